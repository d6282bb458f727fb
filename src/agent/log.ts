/** The agent logs through this; the default writes one line per event to stderr. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

const line = (level: string, message: string, fields?: Record<string, unknown>) =>
  `${new Date().toISOString()} ${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`;

export const stderrLogger: Logger = {
  info: (message, fields) => process.stderr.write(line('info', message, fields)),
  warn: (message, fields) => process.stderr.write(line('warn', message, fields)),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {} };
