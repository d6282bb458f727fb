/** The operator API's alerts (docs/alerts.md): the rules in force and the alerts they raised. */
import { type Static, Type } from 'typebox';

export const AlertJson = Type.Object({
  key: Type.String({ description: 'The rule name, and for per-rollout rules "/<rollout id>"' }),
  rule: Type.String(),
  severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]),
  state: Type.Union([Type.Literal('pending'), Type.Literal('firing'), Type.Literal('recovering')], {
    description: 'pending: the condition holds, not yet for `for`; recovering: firing, its condition clear',
  }),
  since: Type.String({ format: 'date-time', description: 'When it started pending, or fired' }),
  value: Type.Union([Type.Number(), Type.Null()], { description: 'What the condition was last judged on' }),
  threshold: Type.Union([Type.Number(), Type.Null()]),
  rollout: Type.Union([Type.String(), Type.Null()]),
  summary: Type.Union([Type.String(), Type.Null()]),
});

export const AlertRuleJson = Type.Object({
  name: Type.String(),
  kind: Type.String(),
  severity: Type.String(),
  for: Type.String({ description: 'How long the condition must hold, e.g. "600s"' }),
  recover_for: Type.String(),
  summary: Type.Union([Type.String(), Type.Null()]),
});

export const AlertListJson = Type.Object({
  alerts: Type.Array(AlertJson),
  rules: Type.Array(AlertRuleJson),
  evaluated: Type.Boolean({ description: 'False when the server runs without an alert rules file' }),
});

export type AlertJson = Static<typeof AlertJson>;
export type AlertListJson = Static<typeof AlertListJson>;
