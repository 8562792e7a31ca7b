import { describe, expect, it } from 'vitest'
import { ACTION_DOCUMENTS, ACTION_FIELDS, REQUEST_STATES, actionsFor } from './requestActions'

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
