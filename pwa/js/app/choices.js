// What a redraw puts in a form control the person may be using. A page redraws whenever an event arrives (a
// push, the person's own change echoed back, another device's triage); a redraw that put the record's state
// back into a control would undo a choice the person has made and not yet saved, and their "Set status" would
// then save the old value. So each control keeps the person's choice until the person saves it, and starts
// from the record's state only for a new record.

export class Choices {
  constructor() {
    /** @type {string | null} the record the controls were last filled for */
    this.owner = null;
    /** @type {Record<string, string>} the record's value each control was last filled from */
    this.filled = {};
  }

  /**
   * Start a redraw for `owner` (a concern id): a different record than last time forgets every choice.
   * @param {string | null} owner
   * @returns {boolean} whether the controls start afresh
   */
  begin(owner) {
    const fresh = this.owner !== owner;
    this.owner = owner;
    if (fresh) this.filled = {};
    return fresh;
  }

  /**
   * The value control `id` shows after this redraw: what it shows `now` if the person changed it since the
   * record last filled it, else the record's `state`. Remembers `state`, not the choice, so a choice survives
   * any number of redraws.
   * @param {string} id
   * @param {string} now the control's value before the redraw
   * @param {string} state the record's value for it
   * @returns {string}
   */
  pick(id, now, state) {
    const chosen = id in this.filled && now !== this.filled[id];
    this.filled[id] = state;
    return chosen ? now : state;
  }

  /** Forget everything (the page closed). */
  reset() {
    this.owner = null;
    this.filled = {};
  }
}
