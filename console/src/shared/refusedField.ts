// A refused form shows its messages beside the fields; in a long drawer the first of them
// may be out of sight, so the reader is taken to it: scrolled to the middle and focused,
// for the keyboard and a screen reader to land on the field that needs a change.

/** A refused field as Element Plus (desktop) and Vant (phone) mark it. */
const REFUSED = '.el-form-item.is-error, .van-field--error'
const FOCUSABLE = 'input:not([type="hidden"]), textarea, select, [tabindex]:not([tabindex="-1"])'

/** Whether an inline `display: none` (a closed drawer or dialog kept in the page) hides it. */
function hidden(element: Element): boolean {
  for (let node: Element | null = element; node; node = node.parentElement) {
    if (node instanceof HTMLElement && (node.style.display === 'none' || node.hidden)) return true
  }
  return false
}

/** The first refused field in document order that the reader can see, or null. */
export function firstRefusedField(root: ParentNode = document): HTMLElement | null {
  for (const element of root.querySelectorAll<HTMLElement>(REFUSED)) {
    if (!hidden(element)) return element
  }
  return null
}

/** Scroll to the first refused field and focus its input; false when no field is refused. */
export function focusFirstRefused(root: ParentNode = document): boolean {
  const field = firstRefusedField(root)
  if (!field) return false
  field.scrollIntoView?.({ block: 'center' })
  field.querySelector<HTMLElement>(FOCUSABLE)?.focus({ preventScroll: true })
  return true
}

/** Once the refusals are shown: the form sets them when the mutation's promise resolves,
 * and Vue renders them in the same turn, so a task queued now runs after both. */
export function focusFirstRefusedWhenShown(): void {
  setTimeout(() => focusFirstRefused(document), 0)
}
