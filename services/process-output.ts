// How the embedded services quote what went wrong in a process they ran: the last lines
// of its output.
export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
