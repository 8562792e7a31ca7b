import { describe, expect, it } from 'vitest'
import {
  ALERT_ACTION_DOCUMENTS,
  ALERT_STATES,
  alertActions,
  severityTag,
} from './alertFeed'

describe('alertActions', () => {
  it('asks for an acknowledgement before resolving', () => {
    expect(alertActions('ASSIGNED')).toContain('acknowledge')
    expect(alertActions('ASSIGNED')).not.toContain('resolve')
    expect(alertActions('ACKNOWLEDGED')[0]).toBe('resolve')
  })

  it('offers nothing on a final alert', () => {
    expect(alertActions('RESOLVED')).toEqual([])
    expect(alertActions('FALSE_ALARM')).toEqual([])
  })

  it('has a mutation for every step it offers', () => {
    const names = { acknowledge: 'acknowledgeAlert', resolve: 'resolveAlert', falseAlarm: 'markAlertFalseAlarm', reassign: 'reassignAlert' }
    for (const state of ALERT_STATES) {
      for (const action of alertActions(state)) {
        expect(ALERT_ACTION_DOCUMENTS[action]).toContain(`${names[action]}(input: $input)`)
      }
    }
  })
})

describe('tags', () => {
  it('colours critical alerts red', () => {
    expect(severityTag('CRITICAL')).toBe('danger')
    expect(severityTag('LOW')).toBe('info')
  })
})
