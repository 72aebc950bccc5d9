// The server's verdict in words a trainee understands, with what to do next. The rule names come from the
// served catalogue (/public/rules.json, through lib/catalogue.js); the advice for the common ones is written here.
import { el, ruleName } from "../lib/monitor.js";

export const SiteVerdict = (() => {
  // What the trainee should do, by verdict rule (anomaly code).
  const ADVICE = {
    FACE_MISMATCH: ["人脸与登记照片不符", "请本人重新拍摄；若确是本人，请联系机构管理员核实登记照片"],
    FACE_MISSING: ["照片中没有拍到人脸", "请正对镜头、露出整张脸（摘下帽子口罩），在光线充足处重新拍摄"],
    FACE_MULTIPLE: ["照片中有多张人脸", "请只让本人进入画面后重新拍摄"],
    FACE_POOR: ["照片不够清楚", "请擦干净镜头，在光线充足处、把脸放进框内重新拍摄"],
    OUT_OF_FENCE: ["不在培训场地范围内", "请到教室内签到；已在教室的，请到窗边等定位精度变好后再试"],
    GPS_IMPLAUSIBLE: ["定位不可信", "请关闭虚拟定位等软件，打开手机定位（GPS）后重新签到"],
    PHOTO_REPLAY: ["照片疑似重复使用或翻拍", "请用本页面的相机现场重新拍摄，不要上传旧照片或翻拍照片"],
    PROXY_SIGNIN: ["系统认为可能是他人代签", "须学员本人到场签到；如有误会，请联系机构管理员"],
    LIVENESS_FAILED: ["动作验证没有通过", "请重新拍摄：看清屏幕上的动作提示，正对镜头、光线充足，按提示完成动作"],
    OUTSIDE_SESSION: ["不在上课时间内", "请在课表规定的上课时间内签到"],
    BLACKLISTED: ["该学员不能参加本培训", "请联系机构管理员"],
    DUPLICATE_IDENTITY: ["该人脸已登记在另一名学员名下", "请联系机构管理员核实身份"],
    DOUBLE_ENROLMENT: ["该学员同时报名了其他班次", "请联系机构管理员"],
    VERIFICATION_FAILED: ["系统未能完成核验", "请重新拍摄一次；仍不行请联系机构管理员"],
    HEADCOUNT_GAP: ["抓拍到的人数明显少于已签到人数", "请确认学员都在教室，手机对准全班"],
  };
  // Refusals the upload itself got (HTTP 4xx codes): what to do.
  const REFUSAL_ADVICE = {
    LIVENESS_REQUIRED: "本班次签到须完成活体检测：请点“拍照”，看清动作提示后按提示完成动作",
    NOT_ON_ROSTER: "请确认选对了班次和学员；仍有问题请联系机构管理员",
    NOT_ENROLLED: "该学员还没有登记人脸照片，请联系机构管理员登记后再签到",
    ACCURACY_TOO_POOR: "请到窗边或室外开阔处，等定位精度变好后重新拍摄",
    CAPTURED_AT_TOO_OLD: "这条记录保存太久已无法上传，请重新拍摄签到",
    CAPTURED_AT_IN_FUTURE: "请把手机时间设为自动（网络时间）后重新拍摄",
    PHOTO_REPLAYED: "请用本页面的相机现场重新拍摄",
    UNKNOWN_CLASS: "找不到该班次，请刷新页面后重新选择",
    CLASS_NOT_IN_PROGRESS: "该班次今天不在培训期内，请刷新页面后重新选择班次",
  };
  const ACTION = { sign_in: "签到", sign_out: "签退" };

  // A verdict (an upload's answer) → { tone: ok|bad|wait, title, lines: [[what, advice]…], detail }.
  function describe(body, kind) {
    const action = kind === "snapshot" ? "课堂抓拍" : ACTION[body.kind] || "签到";
    if (body.status === "passed") {
      return { tone: "ok", title: kind === "snapshot" ? body.message : `${action}成功`,
        lines: kind === "snapshot" ? [] : [["", "无需再操作，可以离开手机了"]], detail: "" };
    }
    if (body.status === "pending") {
      return { tone: "wait", title: `${action}已受理，正在核验`, lines: [["", "稍后本页会显示结果，无需重复拍摄"]],
        detail: "" };
    }
    if (body.status === "review") {
      return { tone: "wait", title: `${action}已受理，待人工复核`,
        lines: [["", "照片需要管理员人工确认，无需重复签到；结果以复核为准"]], detail: body.message || "" };
    }
    const lines = (body.reasons || []).map(r => {
      const known = ADVICE[r.code];
      return known ? [known[0], known[1]] : [ruleName(r.code), "请联系机构管理员"];
    });
    if (!lines.length) lines.push(["", "请重新拍摄；仍不行请联系机构管理员"]);
    return { tone: "bad", title: `${action}未通过`, lines, detail: body.message || "" };
  }

  // A refusal (4xx) → the same shape.
  function refusal(body, kind) {
    const action = kind === "snapshot" ? "课堂抓拍" : "签到";
    const advice = REFUSAL_ADVICE[body?.code] || "请检查后重新拍摄；仍不行请联系机构管理员";
    return { tone: "bad", title: `${action}未被受理`, lines: [[body?.message || "", advice]], detail: "" };
  }

  // Render into the result box: a title, one line per reason ("what：advice"), and the server's own words.
  function show(box, d) {
    box.className = `result ${d.tone}`;
    const title = el("strong", "verdict", d.title);
    const list = d.lines.map(([what, advice]) => el("p", "advice", what ? `${what}：${advice}` : advice));
    box.replaceChildren(title, ...list);
    if (d.detail) box.append(el("p", "detail", `详情：${d.detail}`));
    box.dataset.tone = d.tone;
  }

  // The fix's accuracy in words a site worker understands.
  function accuracyWords(metres) {
    if (metres <= 20) return "信号良好";
    if (metres <= 50) return "信号一般";
    if (metres <= 150) return "信号较差，可到窗边再试";
    return "信号很差，请到窗边或室外开阔处";
  }

  return { describe, refusal, show, accuracyWords };
})();
