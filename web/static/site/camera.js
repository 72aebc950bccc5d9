// The camera inside the site page: a live preview (front camera for a selfie, rear camera for the classroom),
// JPEG captures through a canvas, and the liveness burst (a few frames at a fixed spacing). The captured
// pictures are what the camera sees (not the mirrored preview), as the server's head-turn check expects.
export const SiteCamera = (() => {
  let stream = null;
  let video = null;

  // Start the preview in `videoEl` with the front ("user") or rear ("environment") camera. Resolves to true,
  // or to a zh-CN sentence saying why not (the page then offers the file picker).
  async function start(videoEl, facing) {
    stop();
    if (!navigator.mediaDevices?.getUserMedia) return "此浏览器不能在页面内使用相机";
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: facing }, width: { ideal: 1280 }, height: { ideal: 960 } },
      });
    } catch (e) {
      stream = null;
      if (e.name === "NotAllowedError" || e.name === "SecurityError") return "未获得相机权限";
      if (e.name === "NotFoundError" || e.name === "OverconstrainedError") return "未找到可用的相机";
      return "相机无法打开（可能被其他应用占用）";
    }
    video = videoEl;
    video.srcObject = stream;
    video.muted = true;
    video.setAttribute("playsinline", "");
    try { await video.play(); } catch { /* autoplay of a muted stream is allowed; play() may still reject once */ }
    await ready(video);
    return true;
  }

  function ready(v) {
    if (v.readyState >= 2 && v.videoWidth) return Promise.resolve();
    return new Promise(resolve => {
      const done = () => { v.removeEventListener("loadeddata", done); resolve(); };
      v.addEventListener("loadeddata", done);
      setTimeout(done, 5000);
    });
  }

  function stop() {
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    if (video) video.srcObject = null;
    video = null;
  }

  const active = () => Boolean(stream && video && video.videoWidth);

  // One JPEG of the current frame, its longer side at most `maxSide` pixels.
  function capture(maxSide = 1280, quality = 0.9) {
    if (!active()) return Promise.reject(new Error("相机未打开"));
    const scale = Math.min(1, maxSide / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve, reject) => canvas.toBlob(
      b => (b ? resolve(b) : reject(new Error("无法生成照片"))), "image/jpeg", quality));
  }

  const pause = ms => new Promise(r => setTimeout(r, ms));

  // The liveness burst: `count` frames `spacingMs` apart (the trainee performs the action meanwhile);
  // `onFrame(i)` after each, for a progress display.
  async function burst(count, spacingMs, onFrame = () => {}) {
    const frames = [];
    for (let i = 0; i < count; i++) {
      if (i) await pause(spacingMs);
      frames.push(await capture(720, 0.85));
      onFrame(i + 1);
    }
    return frames;
  }

  return { start, stop, active, capture, burst, pause };
})();
