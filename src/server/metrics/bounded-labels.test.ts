import { expect, it } from 'vitest';
import { boundedLabels } from './bounded-labels.js';

it('keeps the largest groups and sums the rest as "other", so the series stay bounded', () => {
  const groups = [
    { value: 'a', count: 1 },
    { value: 'b', count: 5 },
    { value: null, count: 3 },
    { value: 'c', count: 2 },
  ];
  expect(boundedLabels(groups, 2)).toEqual([
    { value: 'b', count: 5 },
    { value: 'none', count: 3 },
    { value: 'other', count: 3 },
  ]);
  expect(boundedLabels(groups, 10)).toHaveLength(4);
});

it('folds a real value named "other" into the same series', () => {
  expect(
    boundedLabels(
      [
        { value: 'other', count: 4 },
        { value: 'x', count: 1 },
      ],
      1,
    ),
  ).toEqual([{ value: 'other', count: 5 }]);
});
