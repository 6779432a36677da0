"""Render a network: a still, a PNG sequence or an MP4 video, from a saved .blend or straight from a bundle.

    .venv/bin/python scripts/render.py --bundle runs/digits_cnn/digits_cnn.bcnn.npz --output out/net.png
    .venv/bin/python scripts/render.py --bundle B.bcnn.npz --animate-epochs --camera orbit --video --output out/net.mp4
    .venv/bin/python scripts/render.py --bundle B.bcnn.npz --camera orbit --video --dask local:4 --output out/net.mp4
    blender -b -P scripts/render.py -- --blend scene.blend --animation --output out/frames/

Runs under the bpy module of the project's environment and under a Blender
binary (its arguments then come after "--"). A still is the default;
--animation renders the frame range as PNGs (``--output`` a folder or a path
prefix), --video (implies --animation) encodes them into one MP4 with
Blender's own FFmpeg. The frame range is --frames, else the epoch animation's
range (--animate-epochs), else the scene's range (1-120 for a scene built from
a bundle). Progress is printed per frame with an estimate of the time left.
--dask ADDRESS (implies --animation) renders the frames on a Dask cluster
(docs/scaling.md): local:N worker processes on this machine, or the workers
of a scheduler (tcp://host:8786; workers need bpy and distributed, not this
add-on). The scene is saved as a .blend that travels to the workers, or that
they read from --shared-dir; the frames come back here, and a video is
encoded here. Bad input, a failure or Ctrl-C gives one line on stderr and
exit code 2.
"""

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Blender's binary imports bpy before it runs a script; the bpy module does not.
UNDER_BLENDER = "bpy" in sys.modules
LAYOUTS = {"line": 0.0, "circle": 1.0, "grid": 2.0}
CAMERA_MOVES = ("none", "orbit", "fly-through", "push-in")
BUNDLE_FRAMES = (1, 120)
PROGRAM = "render.py"


class UsageError(Exception):
    """A bad command line: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    parser = _Parser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--blend", help="a saved .blend to render (its scene, camera and animation)")
    source.add_argument("--bundle", help="a network bundle (.bcnn.npz): build the scene and stage first")
    parser.add_argument("--epoch", type=int, help="epoch shown (--bundle; default -1: the last)")
    parser.add_argument("--sample", type=int, help="input sample shown (--bundle; default 0)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="every layer's map layout")
    parser.add_argument("--animate-epochs", action="store_true", help="keyframe the Epoch input over the epochs")
    parser.add_argument("--frames-per-epoch", type=int, default=24)
    parser.add_argument("--hold", type=int, default=12, help="frames each epoch is held")
    parser.add_argument("--camera", choices=CAMERA_MOVES, default="none", help="camera move over the frame range")
    parser.add_argument("--push-in-layer", help="layer the push-in ends on")
    parser.add_argument("--engine", choices=("cycles", "eevee"), default="cycles")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--samples", type=int, default=32, help="render samples")
    parser.add_argument("--frames", type=int, nargs=2, metavar=("START", "END"), help="frame range")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--still", action="store_true", help="one image of the first frame (the default)")
    mode.add_argument("--animation", action="store_true", help="every frame of the range, as PNGs")
    parser.add_argument("--video", action="store_true", help="an MP4 (H.264) of the range; implies --animation")
    parser.add_argument("--output", required=True, help="PNG file (still), folder or prefix (animation), MP4")
    cluster = parser.add_argument_group("rendering on a Dask cluster (docs/scaling.md)")
    cluster.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="render the animation's frames on a Dask cluster (implies --animation): local:N for N worker "
        "processes on this machine, or a scheduler's address such as tcp://host:8786",
    )
    cluster.add_argument(
        "--shared-dir",
        metavar="DIR",
        help="with --dask: a folder every worker sees at the same path; the saved .blend is put there for the "
        "workers to read, instead of being sent to each of them",
    )
    cluster.add_argument(
        "--chunk-frames",
        type=int,
        metavar="N",
        help="with --dask: frames per task (default: enough tasks for three per worker)",
    )
    args = parser.parse_args(argv)

    if args.still and args.video:
        raise UsageError("--video renders an animation: use it without --still")
    if args.still and args.dask:
        raise UsageError("--dask renders an animation's frames on a cluster: use it without --still")
    if not args.dask and (args.shared_dir or args.chunk_frames is not None):
        raise UsageError("--shared-dir and --chunk-frames are for rendering on a cluster: use them with --dask")
    if args.shared_dir and not os.path.isdir(args.shared_dir):
        raise UsageError(f"--shared-dir {args.shared_dir}: no such folder")
    if args.chunk_frames is not None and args.chunk_frames < 1:
        raise UsageError(f"--chunk-frames must be at least 1 (got {args.chunk_frames})")
    if args.dask and UNDER_BLENDER and args.dask.strip().startswith("local:"):
        raise UsageError(
            "--dask local:N starts workers with the bpy module of this Python, which a Blender binary's Python "
            "lacks: run render.py with the project's .venv/bin/python"
        )
    args.animation = args.animation or args.video or bool(args.dask)
    if args.width < 4 or args.height < 4 or args.samples < 1:
        raise UsageError(
            f"--width/--height must be at least 4 and --samples at least 1 "
            f"(got {args.width}x{args.height}, {args.samples})"
        )
    if args.frames and args.frames[1] < args.frames[0]:
        raise UsageError(f"--frames END ({args.frames[1]}) comes before START ({args.frames[0]})")
    if args.frames_per_epoch < 1 or args.hold < 0:
        raise UsageError("--frames-per-epoch must be at least 1 and --hold at least 0")
    if args.camera == "push-in" and not args.push_in_layer:
        raise UsageError("--camera push-in needs --push-in-layer NAME")
    if args.push_in_layer and args.camera != "push-in":
        raise UsageError("--push-in-layer is for --camera push-in")
    if args.blend and (args.epoch is not None or args.sample is not None):
        raise UsageError(
            "--epoch and --sample choose what a scene built from --bundle shows; a --blend shows what it was saved with"
        )
    source = args.blend or args.bundle
    if not os.path.isfile(source):
        raise UsageError(f"{source}: no such file")
    if args.blend and not _looks_like_blend(args.blend):
        raise UsageError(f"{args.blend}: is not a .blend file")
    return args


def _looks_like_blend(path):
    """A .blend starts with "BLENDER", or is zstd or gzip compressed (checked before Blender complains at length)."""
    with open(path, "rb") as file:
        head = file.read(7)
    return head.startswith((b"BLENDER", b"\x28\xb5\x2f\xfd", b"\x1f\x8b"))


def script_arguments(argv=None):
    """The script's own arguments: after "--" under a Blender binary (or when given), else all."""
    argv = list(sys.argv if argv is None else argv)
    if "--" in argv:
        return argv[argv.index("--") + 1 :]
    return [] if UNDER_BLENDER else argv[1:]


def main(argv=None):
    try:
        args = parse_args(script_arguments(argv) if argv is None else list(argv))
    except UsageError as error:
        return _fail(error)
    if not UNDER_BLENDER:
        # Keep the user's own add-ons and settings out of a module render.
        os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    if UNDER_BLENDER and REPO not in sys.path:
        # The project's .venv has blender_cnn installed (editable); a Blender binary's own Python does not,
        # and an installed extension is importable only as bl_ext.<repository>.blender_cnn.
        sys.path.insert(0, REPO)
    from blender_cnn.core.errors import BlenderCNNError

    try:
        paths = render(args)
    except BlenderCNNError as error:
        return _fail(error)
    except (OSError, RuntimeError, ValueError) as error:
        # bpy operators raise RuntimeError with Blender's own report, e.g. a file it cannot read.
        where = args.blend or args.bundle
        return _fail(f"{where}: {' '.join(str(error).split())}")
    except KeyboardInterrupt:
        stopped = "; the cluster's tasks were cancelled" if args.dask else ""
        if args.video:
            stopped += "; no partial video was kept"
        elif args.animation:
            stopped += "; the frames written so far were kept"
        return _fail(f"interrupted (Ctrl-C){stopped}")
    for path in paths:
        print(f"wrote {path}")
    return 0


def render(args):
    if args.dask:
        from blender_cnn.core.cluster import connect

        # Before the scene is built: a wrong address fails in seconds, and local workers start meanwhile.
        with connect(args.dask) as client:
            return _render(args, client)
    return _render(args)


def _render(args, client=None):
    from blender_cnn.scene import stage
    from blender_cnn.scene.rendering import format_seconds, render_animation

    scene, network = _load_scene(args)
    first, last = _frame_range(args, scene, network)
    engine = args.engine.upper()
    # The camera moves frame the network for the output's aspect ratio.
    stage.configure_render(scene, engine, args.width, args.height, args.samples)
    _camera_move(args, network, first, last)
    if scene.camera is None:
        from blender_cnn.core.errors import BlenderCNNError

        raise BlenderCNNError(args.blend or args.bundle, "has no camera to render from")
    scene.frame_start, scene.frame_end = first, last
    if not args.animation:
        scene.frame_set(first)
        output = os.path.abspath(args.output)
        os.makedirs(os.path.dirname(output), exist_ok=True)
        started = time.perf_counter()
        path = stage.render_still(output, scene, engine, args.width, args.height, args.samples)
        print(f"{PROGRAM}: frame {first} rendered in {format_seconds(time.perf_counter() - started)}", flush=True)
        return [path]

    output = args.output
    if not args.video and output.endswith(("/", os.sep)):
        os.makedirs(output, exist_ok=True)
    if client is not None:
        return _render_on_cluster(args, client, first, last)
    return render_animation(
        output, scene, engine, args.width, args.height, args.samples, first, last, video=args.video, progress=_progress
    )


def _render_on_cluster(args, client, first, last):
    import shutil

    from blender_cnn.scene.cluster_render import render_on_cluster, save_blend_for_cluster

    # The scene has its render settings and camera moves by now: the workers render what the .blend holds.
    folder = args.shared_dir or tempfile.mkdtemp(prefix="blender_cnn_cluster_")
    blend = None
    try:
        blend = save_blend_for_cluster(folder)
        return render_on_cluster(
            client,
            blend,
            first,
            last,
            args.output,
            video=args.video,
            progress=_progress,
            shared_dir=args.shared_dir,
            chunk_frames=args.chunk_frames,
        )
    finally:
        if args.shared_dir:
            if blend is not None and os.path.exists(blend):
                os.remove(blend)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _progress(report):
    from blender_cnn.scene.rendering import format_seconds

    per_minute = report.done / report.elapsed * 60 if report.elapsed > 0 else float("nan")
    print(
        f"{PROGRAM}: frame {report.frame} ({report.done}/{report.total}) after "
        f"{format_seconds(report.elapsed)}, about {format_seconds(report.remaining)} left, {per_minute:.1f} frames/min",
        flush=True,
    )


def _load_scene(args):
    import bpy

    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene import stage
    from blender_cnn.scene.network import MODIFIER_NAME, build_network, set_every_layer_input, space_layers

    if args.blend:
        try:
            bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.blend), load_ui=False)
        except RuntimeError as error:
            raise BlenderCNNError(
                args.blend, f"cannot be opened as a .blend ({' '.join(str(error).split())})"
            ) from None
        scene = bpy.context.scene
        networks = [obj for obj in scene.objects if MODIFIER_NAME in obj.modifiers]
        network = networks[0] if networks else None
        needs_network = args.layout or args.animate_epochs or args.camera != "none"
        if network is None and needs_network:
            raise BlenderCNNError(args.blend, "has no blender_cnn network to lay out, animate or move around")
        if args.layout:
            _apply_layout(network, LAYOUTS[args.layout], set_every_layer_input, space_layers)
        return scene, network

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    scene = bpy.context.scene
    network = build_network(args.bundle, epoch=-1 if args.epoch is None else args.epoch, sample=args.sample or 0)
    if args.layout:
        _apply_layout(network, LAYOUTS[args.layout], set_every_layer_input, space_layers)
    # The stage frames the network for the output's aspect ratio.
    stage.configure_render(scene, args.engine.upper(), args.width, args.height, args.samples)
    stage.set_up_stage(network, scene)
    return scene, network


def _apply_layout(network, layout, set_every_layer_input, space_layers):
    set_every_layer_input(network, "Map Layout", layout)
    space_layers(network, layout=layout)


def _frame_range(args, scene, network):
    epoch_range = None
    if args.animate_epochs:
        from blender_cnn.scene.animation import animate_training
        from blender_cnn.scene.network import set_network_input

        epoch_range = animate_training(network, frames_per_epoch=args.frames_per_epoch, hold_frames=args.hold)
        # Watching training, one wants to read which epoch it is and how well it does.
        set_network_input(network, "Show Training Overlay", True)
    if args.frames:
        return tuple(args.frames)
    if epoch_range:
        return int(epoch_range[0]), int(epoch_range[1])
    if args.bundle:
        return BUNDLE_FRAMES
    return scene.frame_start, scene.frame_end


def _camera_move(args, network, first, last):
    if args.camera == "none":
        return
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene import camera_moves

    if last <= first:
        raise BlenderCNNError("--camera", f"a camera move needs more than one frame (frames {first}-{last})")
    if args.camera == "orbit":
        camera_moves.orbit(network, None, first, last)
    elif args.camera == "fly-through":
        camera_moves.fly_through(network, None, first, last)
    else:
        camera_moves.push_in(network, args.push_in_layer, None, first, last)


def _fail(error):
    print(f"{PROGRAM}: error: {error}", file=sys.stderr, flush=True)
    return 2


if __name__ == "__main__":
    code = main()
    if code:
        sys.exit(code)
