// Where my household stands on one occurrence, for its buttons: each member's live
// sign-up (not cancelled), whether one may be checked in now (on the day, before it
// ends), and who of the household has none yet (to sign up).
import { villageTime } from '@/shared/format'

export interface Member {
  id: string
  name: string
}

export interface SignUp {
  id: string
  state: string
  waitlistPosition: number | null
  checkedInAt: string | null
  volunteerHours: number | null
  /** Who of my household it is for. */
  householdMember: Member | null
}

export interface Occurrence {
  id: string
  startsAt: string
  endsAt: string
  capacity: number
  placesLeft: number
  /** Set once the village moved it (本场改期): where it was, and why. */
  movedFrom: string | null
  moveReason: string | null
  signUps: SignUp[]
  signUpCounts: { waitlisted: number }
}

export function liveSignUps(occurrence: Occurrence): SignUp[] {
  return occurrence.signUps.filter((s) => s.state !== 'CANCELLED')
}

export function mayCheckIn(occurrence: Occurrence, signUp: SignUp, now: Date = new Date()): boolean {
  if (signUp.state !== 'SIGNED_UP' || signUp.checkedInAt) return false
  const today = villageTime(now).format('YYYY-MM-DD')
  return villageTime(occurrence.startsAt).format('YYYY-MM-DD') === today && now < new Date(occurrence.endsAt)
}

/** The household's members with no live sign-up for the occurrence, to sign up. */
export function notSignedUp(occurrence: Occurrence, members: Member[]): Member[] {
  const taken = new Set(liveSignUps(occurrence).map((s) => s.householdMember?.id))
  return members.filter((m) => !taken.has(m.id))
}
