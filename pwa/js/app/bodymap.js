// The body map: front and back outlines. A tap places a mark where it lands (per mille of the outline, as the
// record keeps it: docs/PROTOCOL.md 8.3); Enter on an outline places one in the middle, and the arrow keys move
// the selected mark. Each mark then gets its type, size, colour and note in the list below.

import { MARK_TYPES } from '../record.js';
import { byId, h } from './ui.js';

/**
 * @typedef {{pupil: string, side: 'front' | 'back', x: number, y: number, type: string, size_mm?: number,
 *   colour?: string, note?: string}} Mark
 */

const SVG = 'http://www.w3.org/2000/svg';
const VIEW = { width: 200, height: 420 };
const STEP = 10;
export const TYPE_LABELS = /** @type {Record<string, string>} */ ({
  bruise: 'Bruise', cut: 'Cut', graze: 'Graze', scratch: 'Scratch', burn: 'Burn', scald: 'Scald', bite: 'Bite',
  swelling: 'Swelling', mark: 'Mark', other: 'Other',
});

/**
 * Draw the numbered marks of one side into an outline's `g.marks` layer (the capture form, and the concern
 * page's read-only copy of the outlines). Numbers follow the marks' order in `marks`, both sides together.
 * @param {Element} layer
 * @param {{side: string, x: number, y: number}[]} marks
 * @param {string} side
 * @param {number} [selected]
 */
export function drawMarks(layer, marks, side, selected = -1) {
  layer.replaceChildren();
  marks.forEach((mark, i) => {
    if (mark.side !== side) return;
    const cx = (mark.x / 1000) * VIEW.width;
    const cy = (mark.y / 1000) * VIEW.height;
    const circle = document.createElementNS(SVG, 'circle');
    circle.setAttribute('cx', String(cx));
    circle.setAttribute('cy', String(cy));
    circle.setAttribute('r', '11');
    if (i === selected) circle.setAttribute('class', 'selected');
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', String(cx));
    label.setAttribute('y', String(cy));
    label.textContent = String(i + 1);
    layer.append(circle, label);
  });
}

export class BodyMap {
  /**
   * @param {{onChange: () => void, pupils: () => {id: string, name: string}[]}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Mark[]} */
    this.marks = [];
    this.selected = -1;
    this.list = byId('mark-list', HTMLOListElement);
    this.pupilSelect = byId('bodymap-pupil', HTMLSelectElement);
    this.outlines = [byId('outline-front', HTMLButtonElement), byId('outline-back', HTMLButtonElement)];
    for (const outline of this.outlines) {
      outline.addEventListener('click', (event) => this.place(outline, event));
      outline.addEventListener('keydown', (event) => this.nudge(outline, event));
    }
    this.pupilSelect.addEventListener('change', () => this.hooks.onChange());
  }

  /** @param {Mark[]} marks */
  set(marks) {
    this.marks = marks.map((m) => ({ ...m }));
    this.selected = this.marks.length - 1;
    this.render();
  }

  /** Pupils changed: refresh the "marks are on" choice, and drop marks of pupils no longer linked. */
  pupilsChanged() {
    const pupils = this.hooks.pupils();
    const current = this.pupilSelect.value;
    this.pupilSelect.replaceChildren(...pupils.map((p) => h('option', { value: p.id, text: p.name })));
    if (pupils.some((p) => p.id === current)) this.pupilSelect.value = current;
    byId('bodymap-pupil-field', HTMLElement).hidden = pupils.length < 2;
    byId('bodymap-needs-pupil', HTMLElement).hidden = pupils.length > 0;
    for (const outline of this.outlines) outline.disabled = pupils.length === 0;
    const ids = new Set(pupils.map((p) => p.id));
    const kept = this.marks.filter((m) => ids.has(m.pupil));
    if (kept.length !== this.marks.length) this.set(kept);
  }

  /**
   * @param {HTMLButtonElement} outline
   * @param {MouseEvent} event
   */
  place(outline, event) {
    const pupil = this.pupilSelect.value;
    if (!pupil) return;
    let x = 500;
    let y = 500;
    const svg = outline.querySelector('svg');
    if (event.detail > 0 && svg) { // a pointer, not the keyboard
      const box = svg.getBoundingClientRect();
      x = Math.round(((event.clientX - box.left) / box.width) * 1000);
      y = Math.round(((event.clientY - box.top) / box.height) * 1000);
      if (x < 0 || x > 1000 || y < 0 || y > 1000) return;
    }
    const side = outline.dataset.side === 'back' ? 'back' : 'front';
    this.marks.push({ pupil, side, x, y, type: 'bruise' });
    this.selected = this.marks.length - 1;
    this.render();
    this.hooks.onChange();
  }

  /**
   * Arrow keys move the selected mark on this outline.
   * @param {HTMLButtonElement} outline
   * @param {KeyboardEvent} event
   */
  nudge(outline, event) {
    const moves = /** @type {Record<string, [number, number]>} */ ({
      ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP],
    });
    const move = moves[event.key];
    const mark = this.marks[this.selected];
    if (!move || !mark || mark.side !== outline.dataset.side) return;
    event.preventDefault();
    mark.x = Math.min(1000, Math.max(0, mark.x + move[0]));
    mark.y = Math.min(1000, Math.max(0, mark.y + move[1]));
    this.render();
    this.hooks.onChange();
  }

  render() {
    for (const outline of this.outlines) {
      const layer = outline.querySelector('g.marks');
      if (layer) drawMarks(layer, this.marks, outline.dataset.side ?? 'front', this.selected);
    }
    this.list.replaceChildren(...this.marks.map((mark, i) => this.editor(mark, i)));
  }

  /**
   * @param {Mark} mark
   * @param {number} i
   */
  editor(mark, i) {
    const id = (/** @type {string} */ name) => `mark-${i}-${name}`;
    const type = h('select', { id: id('type') }, ...MARK_TYPES.map((t) => h('option', { value: t, text: TYPE_LABELS[t] ?? t })));
    type.value = mark.type;
    const size = h('input', { id: id('size'), type: 'number', inputmode: 'numeric', min: 1, max: 2000 });
    size.value = mark.size_mm ? String(mark.size_mm) : '';
    const colour = h('input', { id: id('colour'), maxlength: 40, autocomplete: 'off' });
    colour.value = mark.colour ?? '';
    const note = h('input', { id: id('note'), maxlength: 500, autocomplete: 'off' });
    note.value = mark.note ?? '';
    const update = () => {
      mark.type = type.value;
      const mm = Number.parseInt(size.value, 10);
      if (Number.isInteger(mm) && mm >= 1 && mm <= 2000) mark.size_mm = mm;
      else delete mark.size_mm;
      if (colour.value.trim()) mark.colour = colour.value.trim();
      else delete mark.colour;
      if (note.value.trim()) mark.note = note.value.trim();
      else delete mark.note;
      this.hooks.onChange();
    };
    for (const input of [type, size, colour, note]) {
      input.addEventListener('input', update);
      input.addEventListener('focus', () => this.select(i));
    }
    const remove = h('button', { type: 'button', class: 'danger', text: `Remove mark ${i + 1}` });
    remove.addEventListener('click', () => {
      this.marks.splice(i, 1);
      this.selected = Math.min(this.selected, this.marks.length - 1);
      this.render();
      this.hooks.onChange();
      (this.outlines[0].disabled ? this.pupilSelect : this.outlines[mark.side === 'back' ? 1 : 0]).focus();
    });
    const who = this.hooks.pupils().find((p) => p.id === mark.pupil)?.name ?? '';
    return h('li', { class: i === this.selected ? 'selected' : undefined },
      h('p', { class: 'mark-title', text: `Mark ${i + 1}: ${mark.side === 'front' ? 'front' : 'back'}${who ? `, ${who}` : ''}` }),
      h('div', { class: 'mark-fields' },
        h('div', { class: 'field' }, h('label', { for: id('type'), text: 'Type' }), type),
        h('div', { class: 'field' }, h('label', { for: id('size'), text: 'Size (mm)' }), size),
        h('div', { class: 'field wide' }, h('label', { for: id('colour'), text: 'Colour' }), colour),
        h('div', { class: 'field wide' }, h('label', { for: id('note'), text: 'Note' }), note)),
      remove);
  }

  /** @param {number} i */
  select(i) {
    if (this.selected === i) return;
    this.selected = i;
    for (const outline of this.outlines) {
      outline.querySelectorAll('g.marks circle').forEach((c) => c.removeAttribute('class'));
    }
    this.renderSelection();
  }

  renderSelection() {
    const items = this.list.children;
    for (let i = 0; i < items.length; i++) items[i].classList.toggle('selected', i === this.selected);
    for (const outline of this.outlines) {
      const layer = outline.querySelector('g.marks');
      if (!layer) continue;
      let n = 0;
      this.marks.forEach((mark, i) => {
        if (mark.side !== outline.dataset.side) return;
        const circle = layer.querySelectorAll('circle')[n++];
        if (circle && i === this.selected) circle.setAttribute('class', 'selected');
      });
    }
  }
}
