// The residents' app's own words (tabs, shell); each screen folder has its own.
export default {
  namespace: 'h5',
  'zh-CN': {
    app: '五村联动 · 居民',
    home: '首页',
    report: '反映问题',
    activities: '活动',
    services: '服务',
    mine: '我的',
    offline: '当前离线，显示的是上次看到的内容',
  },
  en: {
    app: 'Five villages · Residents',
    home: 'Home',
    report: 'Report',
    activities: 'Activities',
    services: 'Services',
    mine: 'Me',
    offline: 'Offline: showing what you saw last',
  },
}
