import { describe, expect, it } from 'vitest'
import { liveSignUp, mayCheckIn, type Occurrence } from './signUps'

const occurrence = (signUps: Occurrence['signUps']): Occurrence => ({
  id: 'o',
  startsAt: '2026-12-20T09:00:00+08:00',
  endsAt: '2026-12-20T11:30:00+08:00',
  capacity: 10,
  placesLeft: 3,
  movedFrom: null,
  moveReason: null,
  signUpCounts: { waitlisted: 0 },
  signUps,
})
const signUp = { id: 's', state: 'SIGNED_UP', waitlistPosition: null, checkedInAt: null, volunteerHours: null }

describe('sign-ups', () => {
  it('ignores a cancelled sign-up', () => {
    expect(liveSignUp(occurrence([{ ...signUp, state: 'CANCELLED' }]))).toBeNull()
  })

  it('checks in on the day in the village’s time, until it ends, once', () => {
    const signedUp = occurrence([signUp])
    expect(mayCheckIn(signedUp, new Date('2026-12-20T00:30:00Z'))).toBe(true) // 08:30 there
    expect(mayCheckIn(signedUp, new Date('2026-12-19T15:00:00Z'))).toBe(false) // the 19th, 23:00
    expect(mayCheckIn(signedUp, new Date('2026-12-20T04:00:00Z'))).toBe(false) // after its end
    expect(mayCheckIn(occurrence([{ ...signUp, checkedInAt: '2026-12-20T09:01:00+08:00' }]), new Date('2026-12-20T01:00:00Z'))).toBe(false)
    expect(mayCheckIn(occurrence([{ ...signUp, state: 'WAITLISTED', waitlistPosition: 2 }]), new Date('2026-12-20T01:00:00Z'))).toBe(false)
  })
})
