// Small pieces every part of a chaos run shares: where its progress lines go, a pause, and
// the rounding of the seconds and shares it reports.
export type Log = (line: string) => void;
export { setTimeout as sleep } from 'node:timers/promises';
export const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
