// The new-activity form and how it becomes CreateActivityInput: a series' weekday or
// day of the month only for the repeat that uses it, `until` only for a series.
import { fromVillageTime } from '@/shared/format'
import { filled } from '@/shared/formInput'

export const ACTIVITY_KINDS = [
  'WEEKEND_CLASS',
  'SERVICE_DAY',
  'TALK',
  'CLINIC',
  'CULTURE',
  'VOLUNTEER_SERVICE',
] as const

export interface ActivityForm {
  kind: string
  title: string
  description: string
  place: string
  capacity: number
  openToNeighbours: boolean
  repeat: 'ONCE' | 'WEEKLY' | 'MONTHLY'
  weekday: number | null
  monthDay: number | null
  startsOn: string
  until: string
  startTime: string
  durationMinutes: number
}

export function blankActivity(): ActivityForm {
  return {
    kind: 'WEEKEND_CLASS',
    title: '',
    description: '',
    place: '',
    capacity: 20,
    openToNeighbours: false,
    repeat: 'ONCE',
    weekday: null,
    monthDay: null,
    startsOn: '',
    until: '',
    startTime: '09:00',
    durationMinutes: 90,
  }
}

export function activityInput(village: string, form: ActivityForm): Record<string, unknown> {
  const { weekday, monthDay, until, ...rest } = form
  return {
    village,
    ...filled(rest),
    ...(form.repeat === 'WEEKLY' && weekday ? { weekday } : {}),
    ...(form.repeat === 'MONTHLY' && monthDay ? { monthDay } : {}),
    ...(form.repeat !== 'ONCE' && until ? { until } : {}),
  }
}

// 本场改期: one occurrence to a new start (the picker's village wall-clock time), with
// the reason the residents signed up will read; it keeps its length.
export interface MoveForm {
  startsAt: string
  reason: string
}

export function moveInput(occurrence: string, form: MoveForm): Record<string, unknown> {
  return { occurrence, startsAt: fromVillageTime(form.startsAt), reason: form.reason }
}
