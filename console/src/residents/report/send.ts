// Sending a report (心声): the request first, then each photo through a presigned URL
// and attached to it. The report page and the offline outbox both send this way.
import { request, type UserError } from '@/shared/graphql'
import { uploadFile } from '@/shared/upload'
import createDocument from './createRequest.graphql?raw'

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

/** Uploads one photo (shared/upload.ts) and attaches it to the request; `onProgress`
 * hears the share sent, 0-1. */
export async function attachPhoto(
  village: string,
  requestId: string,
  photo: Blob,
  name: string,
  onProgress: (share: number) => void,
): Promise<void> {
  const file = new File([photo], name, { type: photo.type || 'image/jpeg' })
  await uploadFile(file, { village, purpose: 'REQUEST_PHOTO', recordType: 'Request', recordId: requestId }, (percent) =>
    onProgress(percent / 100),
  )
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
