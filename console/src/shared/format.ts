// Dates and numbers as the console shows them: in the village's time (UTC+8, whatever
// the browser's zone), 24-hour, and numbers grouped the reader's way.
import dayjs from 'dayjs'
import timezone from 'dayjs/plugin/timezone'
import utc from 'dayjs/plugin/utc'
import 'dayjs/locale/zh-cn'
import { currentLocale } from './i18n'

dayjs.extend(utc)
dayjs.extend(timezone)

export const VILLAGE_TIME_ZONE = 'Asia/Shanghai'

export function villageTime(value: string | Date): dayjs.Dayjs {
  return dayjs(value).tz(VILLAGE_TIME_ZONE)
}

/** What a date-time picker gives ("2026-12-20T09:00:00", the village's wall clock) as
 * the API's DateTime, with the village's offset whatever the browser's zone; '' stays ''. */
export function fromVillageTime(text: string): string {
  return text ? dayjs.tz(text, VILLAGE_TIME_ZONE).format() : ''
}

/** 2026-12-06 14:05 */
export function dateTime(value: string | Date | null | undefined): string {
  return value ? villageTime(value).format('YYYY-MM-DD HH:mm') : '—'
}

/** 2026-12-06 */
export function date(value: string | Date | null | undefined): string {
  return value ? villageTime(value).format('YYYY-MM-DD') : '—'
}

/** 2026年12月6日 (English: Dec 6, 2026) */
export function longDate(value: string | Date): string {
  const day = villageTime(value)
  return currentLocale() === 'en' ? day.format('MMM D, YYYY') : day.format('YYYY年M月D日')
}

/** How long since `value`, in whole minutes, hours or days (for "waiting" times). */
export function waited(value: string | Date, now: Date = new Date()): string {
  const minutes = Math.max(0, Math.floor((now.getTime() - new Date(value).getTime()) / 60000))
  const english = currentLocale() === 'en'
  if (minutes < 60) return english ? `${minutes} min` : `${minutes} 分钟`
  if (minutes < 60 * 24) {
    const hours = Math.floor(minutes / 60)
    return english ? `${hours} h` : `${hours} 小时`
  }
  const days = Math.floor(minutes / 1440)
  return english ? `${days} d` : `${days} 天`
}

export function number(value: number): string {
  return new Intl.NumberFormat(currentLocale()).format(value)
}
