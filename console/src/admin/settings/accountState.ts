// The colour of a resident account's state, the console's way: waiting grey, done green,
// refused red, ended grey.
export type TagType = 'info' | 'primary' | 'success' | 'warning' | 'danger'

const COLOURS: Record<string, TagType> = {
  PENDING: 'info',
  BOUND: 'success',
  REJECTED: 'danger',
  UNBOUND: 'info',
}

export function accountStateTag(state: string): TagType {
  return COLOURS[state] ?? 'info'
}
