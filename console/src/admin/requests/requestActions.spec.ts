import { describe, expect, it } from 'vitest'
import { ACTION_DOCUMENTS, ACTION_FIELDS, REQUEST_STATES, actionsFor, requestStateTag } from './requestActions'

describe('requestStateTag', () => {
  it('colours states the same everywhere: waiting grey, in hand blue, done green', () => {
    expect(requestStateTag('SUBMITTED')).toBe('info')
    expect(requestStateTag('ACCEPTED')).toBe('info')
    expect(requestStateTag('ASSIGNED')).toBe('primary')
    expect(requestStateTag('IN_PROGRESS')).toBe('primary')
    expect(requestStateTag('RESOLVED')).toBe('success')
    expect(requestStateTag('CLOSED')).toBe('success')
  })

  it('shows an overdue request red whatever its state', () => {
    expect(requestStateTag('IN_PROGRESS', true)).toBe('danger')
    expect(requestStateTag('SUBMITTED', true)).toBe('danger')
  })
})

describe('actionsFor', () => {
  it('follows the state machine: register → accept → assign → start → resolve → close', () => {
    expect(actionsFor('SUBMITTED')[0]).toBe('accept')
    expect(actionsFor('ACCEPTED')[0]).toBe('assign')
    expect(actionsFor('ASSIGNED')[0]).toBe('start')
    expect(actionsFor('IN_PROGRESS')[0]).toBe('resolve')
    expect(actionsFor('RESOLVED')[0]).toBe('close')
    expect(actionsFor('REJECTED')).toEqual([])
  })

  it('offers only steps with a mutation and fields', () => {
    for (const state of REQUEST_STATES) {
      for (const action of actionsFor(state)) {
        expect(ACTION_DOCUMENTS[action]).toContain(`${action}Request(input: $input)`)
        expect(ACTION_FIELDS[action]).toBeDefined()
      }
    }
  })
})
