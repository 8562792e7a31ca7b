// The 登记诉求 form as the grid worker fills it, and the createRequest input it becomes:
// blanks left out (the API then takes its defaults), the channel is the grid worker's.
import { filled } from '@/shared/formInput'

export interface RequestForm {
  category: string
  /** One of my grids (a grid worker registers within them). */
  grid: string
  description: string
  locationText: string
  reporterName: string
  reporterPhone: string
}

export function emptyRequestForm(): RequestForm {
  return { category: '', grid: '', description: '', locationText: '', reporterName: '', reporterPhone: '' }
}

export function createRequestInput(village: string, form: RequestForm): Record<string, unknown> {
  return {
    village,
    channel: 'GRID_WORKER',
    category: form.category,
    description: form.description.trim(),
    ...filled({
      grid: form.grid,
      locationText: form.locationText,
      reporterName: form.reporterName,
      reporterPhone: form.reporterPhone,
    }),
  }
}
