// A file onto a record through the API's presigned URLs (storage.graphql): ask for a
// ticket (type and size checked first), send the bytes straight to the object store,
// then attach the key to the record (the API reads the real type from the bytes).
import { ApiError, type UserError } from './graphql'
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

/** Throws ApiError with the API's (Chinese) message when a step is refused. */
export async function uploadFile(file: File, target: UploadTarget): Promise<void> {
  const ticket = await mutate<{ upload: Ticket | null; userErrors: UserError[] }>(uploadDocument, {
    village: target.village,
    purpose: target.purpose,
    filename: file.name,
    contentType: file.type,
    size: file.size,
  })
  const upload = ticket.payload.upload
  if (!upload) throw new ApiError(firstError(ticket.errors) ?? 'upload', 'BAD_USER_INPUT')
  const sent = await fetch(upload.url, {
    method: upload.method,
    headers: Object.fromEntries(upload.headers.map((header) => [header.name, header.value])),
    body: file,
  })
  if (!sent.ok) throw new ApiError(`HTTP ${sent.status}`, 'UPLOAD_FAILED')
  const attached = await mutate<{ attachment: unknown; userErrors: UserError[] }>(attachDocument, {
    village: target.village,
    key: upload.key,
    recordType: target.recordType,
    recordId: target.recordId,
  })
  const refusal = firstError(attached.errors)
  if (refusal) throw new ApiError(refusal, 'BAD_USER_INPUT')
}
