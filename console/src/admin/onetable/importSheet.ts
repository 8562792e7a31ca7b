// 一表采集: the sheet goes straight to the object store through a presigned URL
// (shared/upload.ts, which reports the upload's progress), then the import
// starts in the background and is followed until it is FINISHED or FAILED.
import { ApiError } from '@/shared/graphql'
import { firstError, mutate } from '@/shared/mutate'
import { uploadObject } from '@/shared/upload'
import startImportDocument from './startResidentImport.graphql?raw'

export const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
export const FINAL_STATES = ['FINISHED', 'FAILED']

export interface ImportProgress {
  status: string
  totalRows: number | null
  processedRows: number
}

/** How far the import is, 0-100: rows done of the rows the job found; whole once final. */
export function importPercent(job: ImportProgress): number {
  if (FINAL_STATES.includes(job.status)) return 100
  if (!job.totalRows) return 0
  return Math.min(100, Math.floor((job.processedRows / job.totalRows) * 100))
}

/** Upload the sheet and start its import; the ImportJob's ID. Throws the API's message. */
export async function importSheet(
  village: string,
  file: File,
  onProgress: (percent: number) => void,
): Promise<string> {
  const key = await uploadObject(file, village, 'IMPORT_SHEET', onProgress, file.type || XLSX)
  const started = await mutate<{ id: string }>(startImportDocument, { village, key })
  if (!started.record) throw new ApiError(firstError(started.errors) ?? 'BAD_USER_INPUT', 'BAD_USER_INPUT')
  return started.record.id
}
