// 一表采集: the sheet goes straight to the object store through a presigned URL (sent
// with XMLHttpRequest, whose upload reports progress, unlike fetch), then the import
// starts in the background and is followed until it is FINISHED or FAILED.
import { ApiError } from '@/shared/graphql'
import { mutateForm } from '@/shared/mutate'
import createUploadDocument from './createUploadUrl.graphql?raw'
import startImportDocument from './startResidentImport.graphql?raw'

export const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
export const FINAL_STATES = ['FINISHED', 'FAILED']

interface Ticket {
  key: string
  url: string
  method: string
  headers: { name: string; value: string }[]
}

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

function send(ticket: Ticket, file: File, onProgress: (percent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open(ticket.method, ticket.url)
    for (const header of ticket.headers) xhr.setRequestHeader(header.name, header.value)
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(Math.floor((event.loaded / event.total) * 100))
    }
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new ApiError(`HTTP ${xhr.status}`, 'UPLOAD_FAILED'))
    xhr.onerror = () => reject(new ApiError('upload', 'UPLOAD_FAILED'))
    xhr.send(file)
  })
}

function refusal(errors: Record<string, string>): ApiError {
  return new ApiError(Object.values(errors)[0] ?? 'BAD_USER_INPUT', 'BAD_USER_INPUT')
}

/** Upload the sheet and start its import; the ImportJob's ID. Throws the API's message. */
export async function importSheet(
  village: string,
  file: File,
  onProgress: (percent: number) => void,
): Promise<string> {
  const ticket = await mutateForm<Ticket>(createUploadDocument, {
    village,
    purpose: 'IMPORT_SHEET',
    filename: file.name,
    contentType: file.type || XLSX,
    size: file.size,
  })
  if (!ticket.record) throw refusal(ticket.errors)
  await send(ticket.record, file, onProgress)
  const started = await mutateForm<{ id: string }>(startImportDocument, { village, key: ticket.record.key })
  if (!started.record) throw refusal(started.errors)
  return started.record.id
}
