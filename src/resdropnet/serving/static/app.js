// The web page: send a photo (or webcam frames) to /v1/predict, draw the boxes and one bar chart per face.
"use strict";

const COLORS = {
  angry: "#e63c3c", disgust: "#3ca03c", fear: "#aa50aa", happy: "#f5c828",
  sad: "#2878c8", surprise: "#28c8e6", neutral: "#aaaaaa",
};
const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const statusLine = document.getElementById("status");
const facesList = document.getElementById("faces");
const video = document.getElementById("video");
let stream = null;
let busy = false;
let noFaceAdvice = "";  // what the server's detector suggests when it finds no face, from /v1/model

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

async function predict(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const response = await fetch("/v1/predict", { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

function drawFaces(source, result) {
  canvas.width = result.width;
  canvas.height = result.height;
  context.drawImage(source, 0, 0, result.width, result.height);
  const scale = Math.max(1, result.width / 640);
  context.lineWidth = 3 * scale;
  context.font = `${Math.round(16 * scale)}px system-ui, sans-serif`;
  result.faces.forEach((face, index) => {
    const [x, y, w, h] = face.box;
    const color = COLORS[face.emotion];
    context.strokeStyle = color;
    context.strokeRect(x, y, w, h);
    const number = result.faces.length > 1 ? `${index + 1}. ` : "";  // matches "Face N" in the list
    const label = `${number}${face.emotion} ${(face.confidence * 100).toFixed(0)}%`;
    const height = 20 * scale;
    context.fillStyle = color;
    context.fillRect(x, Math.max(0, y - height), context.measureText(label).width + 8 * scale, height);
    context.fillStyle = "#000";
    context.fillText(label, x + 4 * scale, Math.max(0, y - height) + height - 5 * scale);
    drawLandmarks(face.landmarks, color, scale);
  });
}

function drawLandmarks(points, color, scale) {
  if (!points) return;  // detectors without landmarks (haar) give null
  context.fillStyle = color;
  for (const [px, py] of points) {
    context.beginPath();
    context.arc(px, py, 2.5 * scale, 0, 2 * Math.PI);
    context.fill();
  }
}

function listFaces(result) {
  facesList.replaceChildren();
  result.faces.forEach((face, index) => {
    const item = document.createElement("li");
    item.className = "face";
    item.dataset.emotion = face.emotion;
    item.dataset.testid = "face";
    const title = document.createElement("h3");
    title.textContent = `Face ${index + 1}: ${face.emotion} (${(face.confidence * 100).toFixed(1)}%)`;
    item.append(title);
    for (const [emotion, probability] of Object.entries(face.probabilities)) {
      const row = document.createElement("div");
      row.className = "bar";
      row.dataset.emotion = emotion;
      const name = document.createElement("span");
      name.textContent = emotion;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(probability * 100).toFixed(1)}%`;
      fill.style.background = COLORS[emotion];
      track.append(fill);
      const value = document.createElement("span");
      value.textContent = `${(probability * 100).toFixed(1)}%`;
      row.append(name, track, value);
      item.append(row);
    }
    facesList.append(item);
  });
}

async function showFile(file) {
  if (!file) return;
  setStatus(`Analysing ${file.name}...`);
  try {
    const result = await predict(file, file.name);
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    drawFaces(bitmap, result);
    listFaces(result);
    setStatus(`${file.name}: ${result.faces.length ? `${result.faces.length} face(s) found.` : noFaceHint()}`);
  } catch (error) {
    facesList.replaceChildren();
    canvas.width = 0;  // no earlier photo beside this file's error
    const named = error.message.startsWith(`${file.name}:`);
    setStatus(named ? error.message : `${file.name}: ${error.message}`, true);
  }
}

function noFaceHint() {
  return noFaceAdvice ? `no face found: ${noFaceAdvice} (a server option).` : "no face found.";
}

async function webcamFrame() {
  if (!stream) return;
  if (!busy && video.videoWidth) {
    busy = true;
    const grab = document.createElement("canvas");
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    try {
      const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.9));
      const result = await predict(blob, "webcam.jpg");
      drawFaces(grab, result);
      listFaces(result);
      setStatus(`Webcam: ${result.faces.length} face(s).`);
    } catch (error) {
      setStatus(`Webcam: ${error.message}`, true);
    }
    busy = false;
  }
  requestAnimationFrame(webcamFrame);
}

async function toggleWebcam() {
  const button = document.getElementById("webcam");
  if (stream) {
    stream.getTracks().forEach((track) => track.stop());
    stream = null;
    button.textContent = "Start webcam";
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (error) {
    setStatus(`Webcam unavailable: ${error.message}`, true);
    return;
  }
  video.srcObject = stream;
  await video.play();
  button.textContent = "Stop webcam";
  webcamFrame();
}

async function showModel() {
  const response = await fetch("/v1/model");
  if (!response.ok) return;
  const model = await response.json();
  noFaceAdvice = model.no_face_hint;
  const accuracy = model.private_test_accuracy;
  const figure = accuracy ? `, ${(accuracy * 100).toFixed(1)}% on FER2013 PrivateTest` : "";
  document.getElementById("model").textContent =
    `Model ${model.name} (resdropnet ${model.version}, ${model.backend}, detector ${model.detector})${figure}.`;
}

const drop = document.getElementById("drop");
document.getElementById("file").addEventListener("change", (event) => showFile(event.target.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  showFile(event.dataTransfer.files[0]);
});
document.getElementById("webcam").addEventListener("click", toggleWebcam);
showModel();
