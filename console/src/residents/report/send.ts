// Sending a report (心声): the request first, then each photo through a presigned URL
// and attached to it. The report page and the offline outbox both send this way.
import { ApiError, request, type UserError } from '@/shared/graphql'
import attachDocument from './attachFile.graphql?raw'
import createDocument from './createRequest.graphql?raw'
import uploadUrlDocument from './createUploadUrl.graphql?raw'

export interface Report {
  village: string
  category: string
  description: string
  locationText: string | null
}

export class Refused extends Error {
  constructor(readonly userErrors: UserError[]) {
    super(userErrors.map((e) => e.message).join('；'))
  }
}

function put(url: string, method: string, headers: Record<string, string>, body: Blob, onProgress: (share: number) => void): Promise<void> {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open(method, url)
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value)
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total)
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new ApiError(`HTTP ${xhr.status}`, 'UPLOAD_FAILED')))
    xhr.onerror = () => reject(new TypeError('upload failed'))
    xhr.send(body)
  })
}

/** Uploads one photo and attaches it to the request. */
export async function attachPhoto(village: string, requestId: string, photo: Blob, name: string, onProgress: (share: number) => void): Promise<void> {
  const ticket = await request<{
    createUploadUrl: { upload: { key: string; url: string; method: string; headers: { name: string; value: string }[] } | null; userErrors: UserError[] }
  }>(uploadUrlDocument, {
    input: { village, purpose: 'REQUEST_PHOTO', filename: name, contentType: photo.type || 'image/jpeg', size: photo.size },
  })
  const upload = ticket.createUploadUrl.upload
  if (!upload) throw new Refused(ticket.createUploadUrl.userErrors)
  const headers = Object.fromEntries(upload.headers.map((h) => [h.name, h.value]))
  await put(upload.url, upload.method, headers, photo, onProgress)
  const attached = await request<{ attachFile: { userErrors: UserError[] } }>(attachDocument, {
    input: { village, key: upload.key, recordType: 'Request', recordId: requestId },
  })
  if (attached.attachFile.userErrors.length) throw new Refused(attached.attachFile.userErrors)
  onProgress(1)
}

/** Registers the report; its ID. Refused (with the API's userErrors) when the input is wrong. */
export async function createReport(report: Report): Promise<string> {
  const data = await request<{ createRequest: { request: { id: string } | null; userErrors: UserError[] } }>(createDocument, {
    input: { ...report, channel: 'MINI_PROGRAM' },
  })
  if (!data.createRequest.request) throw new Refused(data.createRequest.userErrors)
  return data.createRequest.request.id
}
