// One colour per stage of a record's life, the same on every screen and both kinds of
// console: waiting grey, being worked blue, overdue or refused red, done green.
type Tone = 'waiting' | 'working' | 'alarm' | 'done' | 'ended'

const TONES: Record<string, Record<string, Tone>> = {
  RequestState: {
    SUBMITTED: 'waiting',
    ACCEPTED: 'waiting',
    ASSIGNED: 'working',
    IN_PROGRESS: 'working',
    REOPENED: 'working',
    RESOLVED: 'done',
    CLOSED: 'done',
    REJECTED: 'ended',
  },
  AlertState: {
    OPEN: 'alarm',
    ASSIGNED: 'waiting',
    ACKNOWLEDGED: 'working',
    RESOLVED: 'done',
    FALSE_ALARM: 'ended',
  },
  AgreementState: {
    PROPOSED: 'waiting',
    ACTIVE: 'done',
    DECLINED: 'alarm',
    REVOKED: 'ended',
    EXPIRED: 'ended',
  },
  NoticeState: { DRAFT: 'waiting', PUBLISHED: 'done', WITHDRAWN: 'ended' },
  ActivityState: { DRAFT: 'waiting', PUBLISHED: 'working', FINISHED: 'done', CANCELLED: 'ended' },
  SignUpState: { WAITLISTED: 'waiting', SIGNED_UP: 'working', CHECKED_IN: 'done', CANCELLED: 'ended' },
  PointsRedemptionState: { PENDING: 'waiting', HANDED_OVER: 'done' },
  ServiceOrderState: {
    ORDERED: 'waiting',
    DISPATCHED: 'working',
    ACCEPTED: 'working',
    DECLINED: 'alarm',
    COMPLETED: 'done',
    RATED: 'done',
    CANCELLED: 'ended',
  },
  AgreementPartyState: { PENDING: 'waiting', ACCEPTED: 'done', DECLINED: 'alarm', LEFT: 'ended' },
  JointCaseState: { OPEN: 'waiting', IN_PROGRESS: 'working', RESOLVED: 'done', CLOSED: 'ended' },
  ResidentTransferState: {
    SENT: 'working',
    RECEIVED: 'done',
    PENDING_REGISTRATION: 'waiting',
    CONFLICT: 'alarm',
  },
}

export type ElementTagType = 'info' | 'primary' | 'danger' | 'success' | 'warning'
export type VantTagType = 'default' | 'primary' | 'danger' | 'success' | 'warning'

const ELEMENT: Record<Tone, ElementTagType> = {
  waiting: 'info',
  working: 'primary',
  alarm: 'danger',
  done: 'success',
  ended: 'info',
}
const VANT: Record<Tone, VantTagType> = {
  waiting: 'default',
  working: 'primary',
  alarm: 'danger',
  done: 'success',
  ended: 'default',
}

/** The stage of `value`; an overdue record is an alarm whatever its state. */
export function tone(enumName: string, value: string, overdue = false): Tone {
  const stage = TONES[enumName]?.[value] ?? 'waiting'
  return overdue && stage !== 'done' && stage !== 'ended' ? 'alarm' : stage
}

export function elementTag(enumName: string, value: string, overdue = false): ElementTagType {
  return ELEMENT[tone(enumName, value, overdue)]
}

export function vantTag(enumName: string, value: string, overdue = false): VantTagType {
  return VANT[tone(enumName, value, overdue)]
}
