import { describe, expect, it } from 'vitest';
import { tokenize } from './lexer.js';

const shape = (text: string) => tokenize(text).map((t) => [t.type, t.text, t.column]);

describe('tokenize', () => {
  it('splits words, operators and punctuation without needing spaces', () => {
    expect(shape('status=online')).toEqual([
      ['word', 'status', 1],
      ['op', '=', 7],
      ['word', 'online', 8],
      ['end', '', 14],
    ]);
    expect(shape('firmware<=2.2.0-rc.1').map((t) => t[1])).toEqual(['firmware', '<=', '2.2.0-rc.1', '']);
    expect(shape('id!=a,b').map((t) => t[1])).toEqual(['id', '!=', 'a', ',', 'b', '']);
    expect(shape('tag.x in (a)').map((t) => t[0])).toEqual(['word', 'word', '(', 'word', ')', 'end']);
  });

  it('keeps ISO instants, globs, ranges and non-ASCII letters in one word', () => {
    for (const word of [
      '2024-10-20T14:00:00+02:00',
      'truck-*?',
      '^2.1.0',
      '~2.1.0',
      'a/b@c',
      'Zürich',
      '東京',
    ]) {
      expect(shape(word)).toEqual([
        ['word', word, 1],
        ['end', '', word.length + 1],
      ]);
    }
  });

  it('unescapes quoted strings of either quote', () => {
    expect(tokenize(`"New York, NY" 'it\\'s' "a\\\\b\\"c" ''`).map((t) => t.text)).toEqual([
      'New York, NY',
      "it's",
      'a\\b"c',
      '',
      '',
    ]);
  });

  it('reports unterminated strings and stray characters with their column', () => {
    expect(() => tokenize('name = "abc')).toThrow(/^column 8: unterminated string, expected a closing "$/);
    expect(() => tokenize('name = "abc\\"')).toThrow(/^column 8: unterminated string/);
    expect(() => tokenize('status = online; drop')).toThrow(/^column 16: unexpected character ';'$/);
    expect(() => tokenize('a ! b')).toThrow(/^column 3: unexpected character '!'$/);
  });
});
