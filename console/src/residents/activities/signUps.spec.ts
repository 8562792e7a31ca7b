import { describe, expect, it } from 'vitest'
import { liveSignUps, mayCheckIn, notSignedUp, type Occurrence, type SignUp } from './signUps'

const occurrence = (signUps: SignUp[]): Occurrence => ({
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
const me = { id: 'r1', name: '张三' }
const mother = { id: 'r2', name: '李梅' }
const signUp: SignUp = { id: 's', state: 'SIGNED_UP', waitlistPosition: null, checkedInAt: null, volunteerHours: null, householdMember: me }

describe('sign-ups', () => {
  it('ignores a cancelled sign-up', () => {
    expect(liveSignUps(occurrence([{ ...signUp, state: 'CANCELLED' }]))).toEqual([])
  })

  it('checks in on the day in the village’s time, until it ends, once', () => {
    const signedUp = occurrence([signUp])
    expect(mayCheckIn(signedUp, signUp, new Date('2026-12-20T00:30:00Z'))).toBe(true) // 08:30 there
    expect(mayCheckIn(signedUp, signUp, new Date('2026-12-19T15:00:00Z'))).toBe(false) // the 19th, 23:00
    expect(mayCheckIn(signedUp, signUp, new Date('2026-12-20T04:00:00Z'))).toBe(false) // after its end
    const checkedIn = { ...signUp, checkedInAt: '2026-12-20T09:01:00+08:00' }
    expect(mayCheckIn(occurrence([checkedIn]), checkedIn, new Date('2026-12-20T01:00:00Z'))).toBe(false)
    const waiting = { ...signUp, state: 'WAITLISTED', waitlistPosition: 2 }
    expect(mayCheckIn(occurrence([waiting]), waiting, new Date('2026-12-20T01:00:00Z'))).toBe(false)
  })

  it('offers the members of the household without a place or a cancelled one', () => {
    expect(notSignedUp(occurrence([signUp]), [me, mother])).toEqual([mother])
    expect(notSignedUp(occurrence([{ ...signUp, state: 'CANCELLED' }]), [me, mother])).toEqual([me, mother])
    expect(notSignedUp(occurrence([signUp, { ...signUp, id: 's2', householdMember: mother }]), [me, mother])).toEqual([])
  })
})
