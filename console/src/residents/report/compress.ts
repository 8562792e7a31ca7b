// Photos from the phone's camera are several MB; the village needs to see the problem,
// not the pixels: each is drawn on a canvas at most 1600 px on its long side and sent as
// JPEG, before upload.
export const MAX_SIDE = 1600
export const QUALITY = 0.8

/** The size a w×h photo is drawn at: within `max` on its long side, never enlarged. */
export function fitWithin(width: number, height: number, max = MAX_SIDE): { width: number; height: number } {
  const scale = Math.min(1, max / Math.max(width, height))
  return { width: Math.round(width * scale), height: Math.round(height * scale) }
}

/** A JPEG of `file` drawn within MAX_SIDE (EXIF orientation applied by the browser). */
export async function compressPhoto(file: Blob): Promise<Blob> {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' })
  const size = fitWithin(bitmap.width, bitmap.height)
  const canvas = document.createElement('canvas')
  canvas.width = size.width
  canvas.height = size.height
  canvas.getContext('2d')!.drawImage(bitmap, 0, 0, size.width, size.height)
  bitmap.close()
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('toBlob'))), 'image/jpeg', QUALITY),
  )
}
