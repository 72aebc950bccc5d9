// Shared helpers for the pages: token handling, authorised fetches, Asia/Shanghai times, rule names.
"use strict";
const Monitor = (() => {
  const RULES = {
    FACE_MISMATCH: "人脸不符", FACE_MISSING: "未检测到人脸", FACE_MULTIPLE: "多人同框",
    FACE_POOR: "人脸质量差", OUT_OF_FENCE: "超出场地围栏", PROXY_SIGNIN: "疑似代签",
    LIVENESS_FAILED: "活体检测未通过", PHOTO_REPLAY: "照片重复使用", GPS_IMPLAUSIBLE: "定位异常",
    HEADCOUNT_GAP: "在场人数不符", TEACHER_ABSENT: "教师未到岗", TEACHER_MISMATCH: "非登记教师授课",
    OUTSIDE_SESSION: "非课时签到", MISSING_SIGNOUT: "未签退", NO_SHOW: "缺勤", CLASS_SILENT: "班次无动态",
    LOW_ATTENDANCE: "出勤率不足", ONLINE_OVER_8H: "线上学习超时", DOUBLE_ENROLMENT: "重复参训",
    BLACKLISTED: "黑名单开班", CLASS_NOT_ALLOWED: "工种不得开班", SAME_TEACHER_BOTH: "理论实操同一教师",
    DUPLICATE_IDENTITY: "一人多证/冒名",
    VERIFICATION_FAILED: "无法核验",
  };
  const SEVERITY = { high: "高", medium: "中", low: "低" };
  const timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const dateTimeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  function takeToken(key) {
    const m = location.hash.match(/token=([^&]+)/);
    if (m) {
      sessionStorage.setItem(key, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname);
    }
    return sessionStorage.getItem(key);
  }
  async function api(token, path, options = {}) {
    const headers = Object.assign({ Authorization: `Bearer ${token}` }, options.headers || {});
    const res = await fetch(path, Object.assign({}, options, { headers }));
    const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
    if (!res.ok) { const e = new Error(body?.message || `HTTP ${res.status}`); e.status = res.status; e.body = body; throw e; }
    return body;
  }
  const photoCache = new Map();
  async function photoUrl(token, sha) {
    if (!sha) return "";
    if (!photoCache.has(sha)) {
      photoCache.set(sha, fetch(`/api/v1/evidence/${sha}`, { headers: { Authorization: `Bearer ${token}` } })
        .then(r => r.ok ? r.blob() : Promise.reject(new Error(r.status)))
        .then(b => URL.createObjectURL(b)).catch(() => ""));
    }
    return photoCache.get(sha);
  }
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
  return {
    RULES, SEVERITY, takeToken, api, photoUrl, el,
    ruleName: c => RULES[c] || c,
    time: iso => timeFmt.format(new Date(iso)),
    dateTime: iso => dateTimeFmt.format(new Date(iso)),
  };
})();
