/** TUF's `expires`: ISO-8601 UTC to the second, the form the specification's examples and clients use. */
export const tufExpiry = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export const DAY_MS = 86_400_000;
