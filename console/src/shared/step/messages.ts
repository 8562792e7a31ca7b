// The words of the step dialog (StepDialog.vue) every screen's record steps use.
export default {
  namespace: 'step',
  'zh-CN': { required: '请填写{field}' },
  en: { required: '{field} is required' },
}
