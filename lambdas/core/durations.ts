// Durations as people write them in policies and on the command line: 90s, 30m, 1h, 1h30m.
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const durationPattern = /^(?:\d+[smhd])+$/;

/** Seconds in a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!durationPattern.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhd])/g)) {
    total += Number(amount) * (unitSeconds[unit!] ?? 0);
  }
  return Number.isSafeInteger(total) && total > 0 ? total : undefined;
}

export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [unit, size] of [
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('') || '0s';
}
