// Where my household stands on one occurrence, for its buttons: the live sign-up (not
// cancelled), whether it may be checked in now (on the day, before it ends).
import { villageTime } from '@/shared/format'

export interface SignUp {
  id: string
  state: string
  waitlistPosition: number | null
  checkedInAt: string | null
  volunteerHours: number | null
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
  signUpCounts: { waitlisted: number }
  signUps: SignUp[]
}

export function liveSignUp(occurrence: Occurrence): SignUp | null {
  return occurrence.signUps.find((s) => s.state !== 'CANCELLED') ?? null
}

export function mayCheckIn(occurrence: Occurrence, now: Date = new Date()): boolean {
  const signUp = liveSignUp(occurrence)
  if (!signUp || signUp.state !== 'SIGNED_UP' || signUp.checkedInAt) return false
  const today = villageTime(now).format('YYYY-MM-DD')
  return villageTime(occurrence.startsAt).format('YYYY-MM-DD') === today && now < new Date(occurrence.endsAt)
}
