// The state tags' colours, the same everywhere (CONSOLE.md): waiting grey, being worked
// blue, overdue red, done green. Vant's tag types.
export type TagType = 'default' | 'primary' | 'success' | 'danger' | 'warning'

const REQUEST: Record<string, TagType> = {
  SUBMITTED: 'default',
  ACCEPTED: 'default',
  ASSIGNED: 'primary',
  IN_PROGRESS: 'primary',
  REOPENED: 'primary',
  RESOLVED: 'success',
  CLOSED: 'success',
  REJECTED: 'default',
}

const SERVICE_ORDER: Record<string, TagType> = {
  ORDERED: 'default',
  DISPATCHED: 'primary',
  ACCEPTED: 'primary',
  DECLINED: 'primary',
  COMPLETED: 'success',
  RATED: 'success',
  CANCELLED: 'default',
}

// An alert's handling: waiting for a grid worker grey, being handled blue, ended green.
const ALERT: Record<string, TagType> = {
  OPEN: 'default',
  ASSIGNED: 'primary',
  ACKNOWLEDGED: 'primary',
  RESOLVED: 'success',
  FALSE_ALARM: 'success',
}

export function requestTag(state: string, overdue = false): TagType {
  return overdue ? 'danger' : (REQUEST[state] ?? 'default')
}

export function serviceOrderTag(state: string): TagType {
  return SERVICE_ORDER[state] ?? 'default'
}

/** Still with the village: not resolved, closed or refused. */
export function isOpenRequest(state: string): boolean {
  return !['RESOLVED', 'CLOSED', 'REJECTED'].includes(state)
}

export function alertTag(state: string): TagType {
  return ALERT[state] ?? 'default'
}
