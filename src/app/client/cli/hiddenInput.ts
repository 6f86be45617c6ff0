/**
 * Password entry without echo. On a terminal the kernel echoes what is typed (cooked mode); raw
 * mode turns that off, and with it the line editing the kernel did, so the few editing keys a
 * password needs are applied here. Not a terminal (a pipe, a file): nothing to hide, lines pass
 * through unchanged.
 */

/** The part of a TTY read stream this needs (process.stdin when it is a terminal). */
interface RawModeInput {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
}

const BACKSPACE = '\b';
const CTRL_C = '\x03';
const CTRL_D = '\x04';
const DELETE = '\x7f';
const CTRL_U = '\x15';

export class HiddenInput {
  private readonly tty: { setRawMode: (mode: boolean) => unknown } | null;
  private hidden = false;
  private watch: ((chunk: Buffer | string) => void) | null = null;

  constructor(private readonly input: NodeJS.ReadableStream) {
    const candidate = input as NodeJS.ReadableStream & RawModeInput;
    const setRawMode = candidate.setRawMode;
    this.tty =
      candidate.isTTY === true && typeof setRawMode === 'function'
        ? { setRawMode: (mode) => setRawMode.call(candidate, mode) }
        : null;
  }

  /** True when typed characters are actually being hidden (input is a terminal). */
  get isTerminal(): boolean {
    return this.tty !== null;
  }

  /**
   * Stops the terminal echoing what is typed until `show()`. Raw mode also stops the terminal
   * turning Ctrl-C into SIGINT and Ctrl-D into end of input, so both call `onQuit` instead.
   */
  hide(onQuit: () => void): void {
    if (this.tty === null || this.hidden) return;
    this.tty.setRawMode(true);
    this.hidden = true;
    this.watch = (chunk) => {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
      if (text.includes(CTRL_C) || text.includes(CTRL_D)) {
        this.show();
        onQuit();
      }
    };
    this.input.on('data', this.watch);
  }

  /** Echo back on; safe to call more than once and when nothing was hidden. */
  show(): void {
    if (this.tty === null || !this.hidden) return;
    if (this.watch !== null) this.input.off('data', this.watch);
    this.watch = null;
    this.tty.setRawMode(false);
    this.hidden = false;
  }

  /**
   * A line typed in raw mode, edited the way cooked mode would have: backspace / delete remove
   * the previous character, Ctrl-U the whole line so far. Other control characters are dropped.
   */
  static applyEditing(raw: string): string {
    let text = '';
    for (const ch of raw) {
      if (ch === BACKSPACE || ch === DELETE) text = Array.from(text).slice(0, -1).join('');
      else if (ch === CTRL_U) text = '';
      else if (ch >= ' ') text += ch;
    }
    return text;
  }
}
