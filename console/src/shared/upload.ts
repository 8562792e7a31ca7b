// A file onto a record through the API's presigned URLs (storage.graphql): ask for a
// ticket (type and size checked first), send the bytes straight to the object store,
// then attach the key to the record (the API reads the real type from the bytes).
import { ApiError } from './graphql'
import { i18n } from './i18n'
import { firstError, mutate } from './mutate'
import attachDocument from './attach.graphql?raw'
import uploadDocument from './upload.graphql?raw'

interface Ticket {
  key: string
  url: string
  method: string
  headers: { name: string; value: string }[]
}

export interface UploadTarget {
  village: string
  purpose: 'REQUEST_PHOTO' | 'NOTICE_ATTACHMENT' | 'IMPORT_SHEET'
  recordType: string
  recordId: string
}

/** Send `file` as the ticket says; XMLHttpRequest rather than fetch because only it
 * reports the upload's progress (0-100) as the bytes go. */
function send(file: File, ticket: Ticket, onProgress?: (percent: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open(ticket.method, ticket.url)
    for (const header of ticket.headers) xhr.setRequestHeader(header.name, header.value)
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress?.(Math.round((event.loaded / event.total) * 100))
    }
    xhr.onload = () => resolve(xhr.status)
    // A TypeError, as fetch's own network failure is: the residents' outbox keeps what
    // failed so for later (lastSeen.isOffline) instead of reporting it refused.
    xhr.onerror = () => reject(new TypeError(i18n.global.t('errors.network')))
    xhr.send(file)
  })
}

/** Send `file` to the object store for `purpose` (ask for a ticket, then the bytes): the
 * key it is stored under. Throws ApiError with the API's (Chinese) message when refused;
 * `onProgress` hears the percentage sent. `contentType` for a file the browser cannot name. */
export async function uploadObject(
  file: File,
  village: string,
  purpose: UploadTarget['purpose'],
  onProgress?: (percent: number) => void,
  contentType = file.type,
): Promise<string> {
  const ticket = await mutate<Ticket>(uploadDocument, {
    village,
    purpose,
    filename: file.name,
    contentType,
    size: file.size,
  })
  const upload = ticket.record
  if (!upload) throw new ApiError(firstError(ticket.errors) ?? 'upload', 'BAD_USER_INPUT')
  const status = await send(file, upload, onProgress)
  if (status < 200 || status >= 300) throw new ApiError(`HTTP ${status}`, 'UPLOAD_FAILED')
  return upload.key
}

/** The file uploaded and attached to the target record; throws as uploadObject does. */
export async function uploadFile(
  file: File,
  target: UploadTarget,
  onProgress?: (percent: number) => void,
): Promise<void> {
  const key = await uploadObject(file, target.village, target.purpose, onProgress)
  const attached = await mutate<unknown>(attachDocument, {
    village: target.village,
    key,
    recordType: target.recordType,
    recordId: target.recordId,
  })
  const refusal = firstError(attached.errors)
  if (refusal) throw new ApiError(refusal, 'BAD_USER_INPUT')
}
