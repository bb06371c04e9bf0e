// How the embedded services quote what went wrong in a process they ran: the last lines
// of its output, and an error's message (whatever was thrown).
export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
