// The viewer of the page Export for Web writes (blender_cnn/scene/web_export.py).
// scripts/build_web_viewer.py bundles it with three.js into blender_cnn/web/viewer.js, one classic
// script that the exported page carries inline: Chromium refuses ES modules from file:// pages, and
// the page has to open from disk with no network.
//
// The page holds two blocks this script reads: #bcnn-config (JSON: title, background, view direction,
// epochs) and #bcnn-model (the .glb, base64).

import {
  Box3,
  Color,
  DoubleSide,
  LinearSRGBColorSpace,
  PerspectiveCamera,
  Scene,
  Spherical,
  Vector3,
  WebGLRenderer,
} from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";

// Vertical, in degrees: a long lens, as the Blender stage's, keeps far layers nearly as large as near ones.
const FIELD_OF_VIEW = 20;
// Room around the network in the first view, as the Blender stage leaves it.
const MARGIN = 1.08;
// The element index each vertex carries (-1: not changed by the epoch); GLTFLoader lowercases custom attributes.
const ELEMENT_ATTRIBUTE = "_bcnn_element";

const state = { rendered: false, error: null, frames: 0, epoch: null };
let markReady;
const ready = new Promise((resolve) => {
  markReady = resolve;
});
window.bcnnViewer = state;
state.ready = ready;

function fail(message) {
  state.error = message;
  const box = document.getElementById("bcnn-error");
  box.textContent = message;
  box.hidden = false;
  markReady(state);
}

function decodeBase64(text) {
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

// Distance along -direction from the centre at which every point fits the camera's view.
function fitDistance(points, centre, direction, camera) {
  const forward = direction.clone().normalize();
  const right = new Vector3().crossVectors(forward, camera.up).normalize();
  const up = new Vector3().crossVectors(right, forward);
  const tanY = Math.tan((camera.fov * Math.PI) / 360);
  const tanX = tanY * camera.aspect;
  let distance = 0;
  const offset = new Vector3();
  for (const point of points) {
    offset.subVectors(point, centre);
    const depth = offset.dot(forward); // towards the far side is positive
    distance = Math.max(
      distance,
      Math.abs(offset.dot(right)) / tanX - depth,
      Math.abs(offset.dot(up)) / tanY - depth,
    );
  }
  return distance;
}

// World positions of (a sample of) every vertex: the network as drawn fits the view more closely than its box.
function samplePoints(model, limit = 20000) {
  const attributes = [];
  let total = 0;
  model.updateMatrixWorld(true);
  model.traverse((object) => {
    const position = object.geometry?.getAttribute("position");
    if (position) {
      attributes.push([object, position]);
      total += position.count;
    }
  });
  const step = Math.max(1, Math.floor(total / limit));
  const points = [];
  for (const [object, position] of attributes)
    for (let i = 0; i < position.count; i += step)
      points.push(new Vector3().fromBufferAttribute(position, i).applyMatrix4(object.matrixWorld));
  return points;
}

// sRGB bytes of the epoch table to linear values, once.
const SRGB_TO_LINEAR = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const c = i / 255;
  SRGB_TO_LINEAR[i] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function start() {
  const config = JSON.parse(document.getElementById("bcnn-config").textContent);
  const canvasHolder = document.getElementById("bcnn-view");
  let renderer;
  try {
    // preserveDrawingBuffer: screenshots (and the browser test) read the canvas between frames.
    renderer = new WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  } catch (error) {
    fail(`This page needs WebGL, which this browser does not offer: ${error.message}`);
    return;
  }
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.setSize(window.innerWidth, window.innerHeight);
  canvasHolder.appendChild(renderer.domElement);

  const scene = new Scene();
  const [r, g, b] = config.background;
  scene.background = new Color().setRGB(r, g, b, LinearSRGBColorSpace);
  const camera = new PerspectiveCamera(FIELD_OF_VIEW, window.innerWidth / window.innerHeight, 0.01, 1000);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.enableDamping = true;
  controls.dampingFactor = 0.12;

  let dirty = true;
  const requestRender = () => {
    dirty = true;
  };
  controls.addEventListener("change", requestRender);
  window.addEventListener("resize", () => {
    camera.aspect = window.innerWidth / window.innerHeight;
    camera.updateProjectionMatrix();
    renderer.setSize(window.innerWidth, window.innerHeight);
    requestRender();
  });

  const loader = new GLTFLoader();
  loader.parse(
    decodeBase64(document.getElementById("bcnn-model").textContent),
    "",
    (gltf) => {
      const model = gltf.scene;
      scene.add(model);
      const animated = [];
      model.traverse((object) => {
        if (!object.geometry) return;
        // The cells are flat squares: show them from behind too.
        if (object.isMesh) object.material.side = DoubleSide;
        const elements = object.geometry.getAttribute(ELEMENT_ATTRIBUTE);
        const colors = object.geometry.getAttribute("color");
        if (elements && colors) animated.push({ elements, colors });
      });
      const points = frame(model, camera, controls, config);
      // Where the network is on the page now (CSS pixels), for tests and scripts that look at screenshots.
      state.footprint = () => {
        const box = new Box3().setFromPoints(points.map((point) => point.clone().project(camera)));
        const { width, height } = renderer.domElement.getBoundingClientRect();
        return {
          left: ((box.min.x + 1) / 2) * width,
          right: ((box.max.x + 1) / 2) * width,
          top: ((1 - box.max.y) / 2) * height,
          bottom: ((1 - box.min.y) / 2) * height,
        };
      };
      setUpEpochs(gltf, animated, config, requestRender);
      renderer.setAnimationLoop(() => {
        // update() runs the damping; it reports a change while the view still moves.
        if (controls.update() || dirty) {
          renderer.render(scene, camera);
          dirty = false;
          state.frames += 1;
          if (!state.rendered) {
            state.rendered = true;
            markReady(state);
          }
        }
      });
    },
    (error) => fail(`The network could not be read: ${error.message || error}`),
  );

  // Turn the view around the network by an angle (degrees), as a drag would.
  state.orbit = (degrees) => {
    const offset = camera.position.clone().sub(controls.target);
    const spherical = new Spherical().setFromVector3(offset);
    spherical.theta += (degrees * Math.PI) / 180;
    camera.position.copy(controls.target).add(new Vector3().setFromSpherical(spherical));
    camera.lookAt(controls.target);
    controls.update();
    requestRender();
  };
}

function frame(model, camera, controls, config) {
  const points = samplePoints(model);
  const target = new Box3().setFromPoints(points).getCenter(new Vector3());
  const direction = new Vector3(...config.view_direction).normalize();
  // A distance at which everything is in front of the camera and inside the view...
  let distance = fitDistance(points, target, direction, camera);
  const right = new Vector3().crossVectors(direction, camera.up).normalize();
  const up = new Vector3().crossVectors(right, direction);
  const tanY = Math.tan((camera.fov * Math.PI) / 360);
  const tanX = tanY * camera.aspect;
  const projected = new Vector3();
  // The title above and the controls below cover the page's edges: the network fits between them.
  const covered = Math.max(
    document.querySelector("header").getBoundingClientRect().bottom,
    window.innerHeight - document.querySelector("footer").getBoundingClientRect().top,
  );
  const freeHeight = Math.max(0.5, 1 - (2 * covered) / window.innerHeight);
  // ...then centre the network in the view and move in until it fills it, as Blender's camera fit does.
  for (let step = 0; step < 6; step++) {
    camera.position.copy(target).addScaledVector(direction, -distance);
    camera.lookAt(target);
    camera.updateMatrixWorld();
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (const point of points) {
      projected.copy(point).project(camera);
      minX = Math.min(minX, projected.x);
      maxX = Math.max(maxX, projected.x);
      minY = Math.min(minY, projected.y);
      maxY = Math.max(maxY, projected.y);
    }
    target.addScaledVector(right, ((minX + maxX) / 2) * distance * tanX);
    target.addScaledVector(up, ((minY + maxY) / 2) * distance * tanY);
    distance *= Math.max((maxX - minX) / 2, (maxY - minY) / 2 / freeHeight);
  }
  distance *= MARGIN;
  camera.position.copy(target).addScaledVector(direction, -distance);
  camera.near = Math.max(distance / 1000, 1e-3);
  camera.far = distance * 20;
  camera.updateProjectionMatrix();
  camera.lookAt(target);
  controls.target.copy(target);
  controls.maxDistance = distance * 8;
  controls.update();
  return points;
}

function setUpEpochs(gltf, animated, config, requestRender) {
  const table = gltf.parser.json.extras?.blender_cnn?.epoch_colors;
  const panel = document.getElementById("bcnn-epochs");
  if (!table || !animated.length || config.epochs.length < 2) return;
  gltf.parser.getDependency("accessor", table.accessor).then((accessor) => {
    const bytes = accessor.array; // epochs x elements x RGB, sRGB bytes
    const elementCount = table.elements;
    const epochs = config.epochs;
    const slider = document.getElementById("bcnn-epoch");
    const label = document.getElementById("bcnn-epoch-label");
    const play = document.getElementById("bcnn-play");
    slider.max = String(epochs.length - 1);

    const show = (position) => {
      const low = Math.floor(position);
      const high = Math.min(low + 1, epochs.length - 1);
      const t = position - low;
      const lowBase = low * elementCount * 3;
      const highBase = high * elementCount * 3;
      for (const { elements, colors } of animated) {
        for (let v = 0; v < elements.count; v++) {
          const element = elements.getX(v);
          if (element < 0) continue;
          const a = lowBase + element * 3;
          const b = highBase + element * 3;
          colors.setXYZ(
            v,
            SRGB_TO_LINEAR[bytes[a]] * (1 - t) + SRGB_TO_LINEAR[bytes[b]] * t,
            SRGB_TO_LINEAR[bytes[a + 1]] * (1 - t) + SRGB_TO_LINEAR[bytes[b + 1]] * t,
            SRGB_TO_LINEAR[bytes[a + 2]] * (1 - t) + SRGB_TO_LINEAR[bytes[b + 2]] * t,
          );
        }
        colors.needsUpdate = true;
      }
      const nearest = epochs[Math.round(position)];
      label.textContent = `Epoch ${nearest}`;
      state.epoch = position;
      requestRender();
    };

    let playing = null;
    const stop = () => {
      if (playing !== null) cancelAnimationFrame(playing);
      playing = null;
      play.textContent = "Play";
    };
    slider.addEventListener("input", () => {
      stop();
      show(Number(slider.value));
    });
    play.addEventListener("click", () => {
      if (playing !== null) return stop();
      let position = Number(slider.value) >= epochs.length - 1 ? 0 : Number(slider.value);
      let last = performance.now();
      play.textContent = "Pause";
      const step = (now) => {
        // One epoch per second, blending between them.
        position = Math.min(position + (now - last) / 1000, epochs.length - 1);
        last = now;
        slider.value = String(position);
        show(position);
        playing = position < epochs.length - 1 ? requestAnimationFrame(step) : (stop(), null);
      };
      playing = requestAnimationFrame(step);
    });
    state.setEpoch = (position) => {
      stop();
      slider.value = String(position);
      show(Number(position));
    };
    const shown = config.shown_position;
    slider.value = String(shown);
    label.textContent = `Epoch ${epochs[Math.round(shown)]}`;
    state.epoch = shown;
    panel.hidden = false;
  });
}

start();
