"""``scene.sora``: the panel's settings, saved with the .blend, that Generate turns into a
ShotSpec. What a running job shows lives in :mod:`.live` (never saved)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)
from bpy.types import PropertyGroup

from . import model_files, models, schedule

MODE_ITEMS = [
    ("generate", "Generate", "Make a shot from the prompt alone", "PLAY", 0),
    ("animate", "Animate Still", "Bring a still image (the Render Result or a chosen image) to life", "IMAGE_DATA", 1),
    ("extend", "Extend Render", "Continue the rendered sequence forwards or backwards", "FRAME_NEXT", 2),
    ("interpolate", "Fill Frames", "Make the frames between two rendered keyframes", "IPO_EASE_IN_OUT", 3),
    ("restyle", "Restyle", "Re-generate a rendered sequence with the prompt", "BRUSH_DATA", 4),
    ("control", "Follow Control", "Follow a control pass rendered from the scene (depth, edges, layout "
     "or pose): the layout, camera path and timing of a blocked-out shot", "OUTLINER_OB_CAMERA", 5),
    ("hdr", "HDR", "Turn a display-referred clip (a render or a generated shot) into scene-linear HDR "
     "(an LTX-2 HDR model): values above 1.0 in the compositor", "LIGHT_SUN", 6),
]
UPSAMPLE_ITEMS = [
    ("auto", "Auto", "Two stages where the model folder has a latent upsampler (LTX-2)"),
    ("on", "On", "Two stages: made at half size, upsampled and refined (needs its latent upsampler)"),
    ("off", "Off", "One stage at the full size"),
]
CONTROL_KIND_ITEMS = [
    ("depth", "Depth", "Camera depth over the shot: near white, far black (camera motion)"),
    ("edges", "Edges", "Outlines of the geometry (a Sobel of the depth)"),
    ("layout", "Layout", "Each object a flat colour, or white silhouettes"),
    ("pose", "Pose", "The armatures' bones in the OpenPose colours"),
]
CONTROL_SOURCE_ITEMS = [
    ("RENDERED", "Rendered", "The pass Render Control made for this shot (<shot>/control/)"),
    ("PATH", "Sequence Path", "A control sequence on disk: name.####.png"),
]
LAYOUT_STYLE_ITEMS = [
    ("colors", "Colours", "A flat hue per object"),
    ("silhouettes", "Silhouettes", "White silhouettes on black"),
]
STILL_ITEMS = [
    ("RENDER_RESULT", "Render Result", "The current Render Result (render a frame first)"),
    ("IMAGE", "Image", "An image datablock"),
    ("FILE", "File", "An image file on disk"),
]
SEQ_ITEMS = [
    ("RENDER_OUTPUT", "Render Output", "The scene's rendered frames (Output Properties path and frame range)"),
    ("PATH", "Sequence Path", "A frame sequence: name.####.exr, a folder, or a file"),
]
DIRECTION_ITEMS = [
    ("forward", "Forward", "New frames after the last rendered frame"),
    ("backward", "Backward", "New frames before the first rendered frame"),
]
def _model_search(self, context, edit_text):
    names = [m.name for m in models.scan_models()]
    if "tinyworld" not in names:
        names.insert(0, "tinyworld")
    return [n for n in names if edit_text.lower() in n.lower()] or names


class SoraSceneProps(PropertyGroup):
    shot_name: StringProperty(name="Shot", default="shot",
                              description="Shot name: compositor node, folder //sora/<shot>/v###/ and frame names")
    mode: EnumProperty(name="Mode", items=MODE_ITEMS, default="generate")
    prompt: StringProperty(name="Prompt", description="What the shot shows: subjects, action, camera motion")
    negative_prompt: StringProperty(name="Negative", description="What the shot should avoid")
    prompt_schedule: CollectionProperty(type=schedule.SoraPromptChange, name="Prompt Schedule",
                                        description="Later prompts of a long shot, each from a time on")
    schedule_index: IntProperty(default=0)
    model: StringProperty(name="Model", default="tinyworld", search=_model_search,
                          description="Bundled model name, a folder name under the model folders, or a path")
    seed: IntProperty(name="Seed", default=0, min=0)
    steps: IntProperty(name="Steps", default=0, min=0, max=1000,
                       description="Denoising steps; 0 uses the model's default")
    guidance: FloatProperty(name="Guidance", default=-1.0, min=-1.0, max=50.0,
                            description="Classifier-free guidance; -1 uses the model's default")
    guidance_2: FloatProperty(name="Guidance 2", default=-1.0, min=-1.0, max=50.0,
                              description="Guidance of the low-noise expert (two-expert models: Wan 2.2 "
                                          "A14B); -1 uses the model's default")
    upsample: EnumProperty(name="Two Stages", items=UPSAMPLE_ITEMS, default="auto",
                           description="LTX-2 with a latent upsampler: half size, upsampled x2, refined")

    use_scene_frames: BoolProperty(name="Scene Range", default=False,
                                   description="Make the scene's whole frame range: a long shot of "
                                               "several passes when it is longer than the model's "
                                               "pass (the panel shows the frame and pass count). "
                                               "Off: Frames (0: one pass of the model's default length)")
    frames: IntProperty(name="Frames", default=0, min=0, max=100000,
                        description="Frames to make; 0 makes one pass of the model's default length")
    use_scene_fps: BoolProperty(name="Scene FPS", default=True)
    fps: FloatProperty(name="FPS", default=24.0, min=0.1, max=1000.0)
    use_scene_size: BoolProperty(name="Scene Size", default=True,
                                 description="Use the render resolution, fitted to the model's rule")
    width: IntProperty(name="Width", default=832, min=16, max=8192)
    height: IntProperty(name="Height", default=480, min=16, max=8192)

    still_source: EnumProperty(name="Still", items=STILL_ITEMS, default="RENDER_RESULT")
    still_image: PointerProperty(name="Image", type=bpy.types.Image)
    still_path: StringProperty(name="Image File", subtype="FILE_PATH")

    seq_source: EnumProperty(name="Frames From", items=SEQ_ITEMS, default="RENDER_OUTPUT")
    seq_path: StringProperty(name="Sequence", subtype="FILE_PATH",
                             description="name.####.exr pattern, a folder or a file")
    use_scene_range: BoolProperty(name="Scene Range", default=True,
                                  description="Use the scene's frame range as the rendered frames")
    seq_start: IntProperty(name="First", default=1, min=0)
    seq_end: IntProperty(name="Last", default=16, min=0)
    direction: EnumProperty(name="Direction", items=DIRECTION_ITEMS, default="forward")
    extend_frames: IntProperty(name="New Frames", default=8, min=1, max=100000,
                               description="How many frames to add")
    context_frames: IntProperty(name="Context", default=0, min=0, max=1000,
                                description="Rendered frames that condition the new ones; 0 uses the model's default")
    key_a: IntProperty(name="From Frame", default=1, min=0, description="First keyframe (a rendered frame)")
    key_b: IntProperty(name="To Frame", default=16, min=0, description="Last keyframe (a rendered frame)")
    strength: FloatProperty(name="Strength", default=0.6, min=0.01, max=1.0,
                            description="0 keeps the input, 1 ignores it")

    control_kind: EnumProperty(name="Control", items=CONTROL_KIND_ITEMS, default="depth",
                               description="What the control pass shows")
    control_source: EnumProperty(name="Control From", items=CONTROL_SOURCE_ITEMS, default="RENDERED")
    control_path: StringProperty(name="Control Sequence", subtype="FILE_PATH",
                                 description="name.####.png pattern, a folder or a file")
    control_strength: FloatProperty(name="Control Strength", default=1.0, min=0.0, max=2.0,
                                    description="How strongly the control is followed (where the model can)")
    layout_style: EnumProperty(name="Layout Style", items=LAYOUT_STYLE_ITEMS, default="colors")

    link_composite: BoolProperty(name="Link to Composite", default=False,
                                 description="Also connect the shot to the Composite output (replaces its link)")
    add_strip: BoolProperty(name="Add VSE Strip", default=False,
                            description="Also add the shot as an image strip in the Video Sequencer")

    last_dir: StringProperty(name="Last Shot", subtype="DIR_PATH",
                             description="Folder of the last shot brought into the compositor")

    loras: CollectionProperty(type=model_files.SoraLora, name="LoRAs",
                              description="LoRA files applied to the model, each at its strength")
    lora_index: IntProperty(default=0)
    preset: model_files.preset_prop()


SoraSceneProps.__annotations__.update(model_files.component_props())    # transformer_file, ...


classes = (SoraSceneProps,)


def register_props() -> None:
    bpy.types.Scene.sora = PointerProperty(type=SoraSceneProps)


def unregister_props() -> None:
    del bpy.types.Scene.sora
