// The alert feed's rules: which steps an alert in each state allows, the colours of
// severities, and the short beep that tells the admin a new alert came in.
import type { ElementTagType } from '@/shared/stateTags'
import acknowledgeDocument from './acknowledgeAlert.graphql?raw'
import falseAlarmDocument from './markAlertFalseAlarm.graphql?raw'
import reassignDocument from './reassignAlert.graphql?raw'
import resolveDocument from './resolveAlert.graphql?raw'

export const ALERT_STATES = ['OPEN', 'ASSIGNED', 'ACKNOWLEDGED', 'RESOLVED', 'FALSE_ALARM'] as const
export const LIVE_STATES = ['OPEN', 'ASSIGNED', 'ACKNOWLEDGED'] as const
export const ALERT_KINDS = [
  'FALL',
  'FIRE',
  'SMOKE',
  'GAS',
  'VEHICLE_LINGERING',
  'FIRE_LANE_BLOCKED',
  'SOS',
  'HEART_RATE_ABNORMAL',
  'LOW_SPO2',
  'HIGH_BLOOD_PRESSURE',
  'MISSING_PERSON',
] as const
export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'] as const

/** 紧急 red, 高 orange, 中 blue, 低 grey. */
export function severityTag(severity: string): ElementTagType {
  switch (severity) {
    case 'CRITICAL':
      return 'danger'
    case 'HIGH':
      return 'warning'
    case 'MEDIUM':
      return 'primary'
    default:
      return 'info'
  }
}

export type AlertAction = 'acknowledge' | 'resolve' | 'falseAlarm' | 'reassign'

export const ALERT_ACTION_FIELDS: Record<AlertAction, { field: string; required?: boolean }[]> = {
  acknowledge: [{ field: 'note' }],
  resolve: [{ field: 'outcome', required: true }],
  falseAlarm: [{ field: 'note', required: true }],
  reassign: [{ field: 'assignee', required: true }, { field: 'note' }],
}

export const ALERT_ACTION_DOCUMENTS: Record<AlertAction, string> = {
  acknowledge: acknowledgeDocument,
  resolve: resolveDocument,
  falseAlarm: falseAlarmDocument,
  reassign: reassignDocument,
}

/** The steps an alert in `state` can take (resolving needs an acknowledgement first). */
export function alertActions(state: string): AlertAction[] {
  switch (state) {
    case 'OPEN':
    case 'ASSIGNED':
      return ['acknowledge', 'falseAlarm', 'reassign']
    case 'ACKNOWLEDGED':
      return ['resolve', 'falseAlarm', 'reassign']
    default:
      return []
  }
}

let audio: AudioContext | null = null

/** A short two-tone beep (WebAudio, no sound file). Browsers allow it once the page
 * has had a click or key press; before that it stays silent, and the badge still shows. */
export function beep(): void {
  try {
    audio ??= new AudioContext()
    void audio.resume()
    const start = audio.currentTime
    for (const [offset, frequency] of [
      [0, 880],
      [0.18, 660],
    ]) {
      const oscillator = audio.createOscillator()
      const gain = audio.createGain()
      oscillator.frequency.value = frequency
      gain.gain.setValueAtTime(0.2, start + offset)
      gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.15)
      oscillator.connect(gain).connect(audio.destination)
      oscillator.start(start + offset)
      oscillator.stop(start + offset + 0.16)
    }
  } catch {
    // No audio device (or no WebAudio): the badge and the list still tell.
  }
}
