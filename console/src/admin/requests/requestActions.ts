// What the village admin may do to a request in each state (the state machine of
// graphql/schema/requests.graphql) and the fields each step asks for.
import acceptDocument from './acceptRequest.graphql?raw'
import assignDocument from './assignRequest.graphql?raw'
import closeDocument from './closeRequest.graphql?raw'
import rejectDocument from './rejectRequest.graphql?raw'
import reopenDocument from './reopenRequest.graphql?raw'
import resolveDocument from './resolveRequest.graphql?raw'
import startDocument from './startRequest.graphql?raw'

export const REQUEST_STATES = [
  'SUBMITTED',
  'ACCEPTED',
  'ASSIGNED',
  'IN_PROGRESS',
  'REOPENED',
  'RESOLVED',
  'CLOSED',
  'REJECTED',
] as const

export const REQUEST_GRADES = ['SIMPLE', 'COMPLEX', 'HARD'] as const

export type RequestAction = 'accept' | 'reject' | 'assign' | 'start' | 'resolve' | 'close' | 'reopen'

/** The fields each step asks for; `required` ones the API insists on too. */
export const ACTION_FIELDS: Record<RequestAction, { field: string; required?: boolean }[]> = {
  accept: [{ field: 'grade' }, { field: 'note' }],
  reject: [{ field: 'reason', required: true }],
  assign: [{ field: 'assignee' }, { field: 'note' }],
  start: [{ field: 'note' }],
  resolve: [{ field: 'resolution', required: true }],
  close: [{ field: 'note' }],
  reopen: [{ field: 'reason', required: true }],
}

export const ACTION_DOCUMENTS: Record<RequestAction, string> = {
  accept: acceptDocument,
  reject: rejectDocument,
  assign: assignDocument,
  start: startDocument,
  resolve: resolveDocument,
  close: closeDocument,
  reopen: reopenDocument,
}

const ACTIONS_BY_STATE: Record<string, RequestAction[]> = {
  SUBMITTED: ['accept', 'reject'],
  ACCEPTED: ['assign', 'reject'],
  ASSIGNED: ['start', 'assign'],
  IN_PROGRESS: ['resolve', 'assign'],
  REOPENED: ['assign', 'start'],
  RESOLVED: ['close', 'reopen'],
  CLOSED: ['reopen'],
  REJECTED: [],
}

/** The steps a request in `state` can take, the usual next one first. */
export function actionsFor(state: string): RequestAction[] {
  return ACTIONS_BY_STATE[state] ?? []
}
