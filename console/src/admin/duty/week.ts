// The roster as a week table: days Monday to Sunday in village time, and each staff
// member's shifts placed on every day they overlap (a night shift shows on both days).
import type { Dayjs } from 'dayjs'
import { villageTime } from '@/shared/format'

export interface Shift {
  id: string
  startsAt: string
  endsAt: string
  onDuty: boolean
  staff: { id: string }
}

/** Monday 00:00 (village time) of the week holding `day`. */
export function weekStart(day: string | Date): Dayjs {
  const local = villageTime(day).startOf('day')
  return local.subtract((local.day() + 6) % 7, 'day')
}

export function weekDays(start: Dayjs): Dayjs[] {
  return Array.from({ length: 7 }, (_, index) => start.add(index, 'day'))
}

/** staff ID → the shifts of each of the 7 days. */
export function weekTable(shifts: Shift[], start: Dayjs): Map<string, Shift[][]> {
  const table = new Map<string, Shift[][]>()
  const days = weekDays(start)
  for (const shift of shifts) {
    const row = table.get(shift.staff.id) ?? days.map(() => [])
    days.forEach((day, index) => {
      const dayEnd = day.add(1, 'day')
      if (villageTime(shift.startsAt).isBefore(dayEnd) && villageTime(shift.endsAt).isAfter(day)) {
        row[index].push(shift)
      }
    })
    table.set(shift.staff.id, row)
  }
  return table
}
