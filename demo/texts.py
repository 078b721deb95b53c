"""The words on the page, in English: the reference every other language follows.

Each other language is a module beside this one, ``texts_<code>.py`` (ISO 639-1), with every
name below (demo.language finds it). Plain strings the page was built with are translated in the
browser by gr.I18n, so they hold no braces: its message format would read them as fields. Strings
with {fields} are filled in on the server, in the request's language.
"""

from core.handout import HandoutWords

TITLE = "Grad-CAM Explorer"

INTRO = (
    "# Grad-CAM Explorer\n"
    "Upload a photo and see **why** an ImageNet network predicts what it predicts. "
    "Pick a class to explain, slide through the network's depth, and compare Grad-CAM with "
    "guided backprop and Guided Grad-CAM (Selvaraju et al., ICCV 2017)."
)

HELP = """
**Grad-CAM heatmap.** The network's last convolutional stages hold feature maps *A*. Grad-CAM asks
how much the score of the chosen class *y<sup>c</sup>* would rise if each feature map grew: it averages
the gradient ∂*y<sup>c</sup>*/∂*A<sub>k</sub>* over the image to get one weight per map, adds the maps
up with those weights, and keeps the positive part. Red means "this region raised the class score".

**Guided backprop.** The gradient of the class score with respect to every input pixel, but with
each ReLU letting only positive gradients through. It shows fine edges and textures the network
responds to, yet it looks almost the same for every class: it is *not* class-discriminative.

**Guided Grad-CAM.** Guided backprop multiplied by the Grad-CAM map: the fine detail of guided
backprop, but only where Grad-CAM says the class evidence is. Pick a different class and watch it move.

**Layers 1 to 4.** Early stages (layer1, layer2) see small patches, so their maps are sharp and
local but respond to edges and colours more than to objects. layer4 sees the whole object: its
map is coarse (a 7×7 grid for a 224-pixel input) but it is the most class-discriminative.
The strip at the bottom shows the same class at all four depths.

**Counterfactual.** With the toggle on, the map shows regions that argue *against* the class:
remove them and the network would be more confident in it. On a cat-and-dog photo, the
counterfactual map for "cat" usually lights up the dog.

**Untrained weights.** When the banner says the model is untrained, its predictions and maps are
random: useful to see what the method does without learning, not to learn about the image.
"""

# ----- the Explore tab's controls (demo/ui.py) ----------------------------------------------------

TAB_EXPLORE = "Explore"
TAB_LIVE = "Live"
UPLOAD_LABEL = "Your image"
EXAMPLES_LABEL = "Examples (click one)"
MODEL_LABEL = "Model"
LAYER_LABEL = "Layer"
LAYER_INFO = "1 = shallow: sharp, local · 4 = deep: coarse, class-discriminative"
#: The layer slider's help once the model is known: its positions, e.g. "1 = layer1 · 56×56 · …".
LAYER_POSITIONS = "shallow, sharp (1) → deep, class-discriminative (4): {positions}"
TOP_K_LABEL = "Top-k predictions"
METHOD_LABEL = "Method"
METHOD_INFO = "Compare them all below, scored for faithfulness"
MORE_CONTROLS = "More controls"
COLORMAP_LABEL = "Colormap (cividis reads well with colour blindness)"
OPACITY_LABEL = "Overlay opacity"
COUNTERFACTUAL_LABEL = "Counterfactual: show what argues against the class"
#: For main's localisation box (issue 19, part 2), whose controls meet these texts at the merge.
BOX_LABEL = "Localisation box on the overlays (the paper's §4.1)"
BOX_THRESHOLD_LABEL = "Box threshold: share of the map's peak (the paper: 0.15)"
PRECISION_LABEL = "Precision"
PRECISION_INFO = "bfloat16 runs the network faster where the processor does it natively; its maps agree with float32 to r ≥ 0.998"
PRECISION_FAST = "fast (bfloat16)"
PRECISION_EXACT = "exact (float32)"
PREDICTIONS_LABEL = "Predictions"
PREDICTIONS_UNTRAINED = "Predictions (untrained model)"
TOP_CLASS_LABEL = "Explain which prediction?"
ANY_CLASS_LABEL = "…or search any of the 1000 classes"
FULL_SIZE_BUTTON = "⬇ Full-resolution panels (PNG)"
FULL_SIZE_LABEL = "Full-resolution panels"
COMPARE_TITLE = "Compare methods: which explanation to trust?"
COMPARE_RUN = "Compare all methods for this class and layer"
COMPARE_GALLERY = "Methods side by side"
COMPARE_DELETION = "Deletion: most salient pixels removed first (lower is better)"
COMPARE_INSERTION = "Insertion: most salient pixels restored first (higher is better)"
HELP_TITLE = "What am I looking at?"
COMPARE_HEADING = "**{label}** at layer{layer}: a lower deletion and a higher insertion area mean a more faithful map."
COMPARE_COLUMNS = "| method | deletion AUC ↓ | insertion AUC ↑ | confidence drop ↓ |"

# ----- the status line and the errors (demo/status.py, demo/common.py) ------------------------

STATUS = "**{model}** · weights: {weights}{untrained} · model input {width}×{height} · maps in {precision}{timing}"
STATUS_UNTRAINED = " · ⚠️ **untrained: predictions are meaningless**"
STATUS_TIMING = " · {ms} ms"
WEIGHTS_RANDOM = "The app was started with random weights (GRADCAM_WEIGHTS=random)."
CANNOT_EXPLAIN = "Cannot explain this"
INVALID_REQUEST = "Invalid request: {reason}"
NO_IMAGE = "Upload an image first (or click one of the examples)."
CLUSTER_UNREACHABLE = "The explainer cluster at {url} did not answer. Try again in a moment, or ask whoever runs this page to check the cluster."
CLUSTER_FALLBACK = "⚠️ The explainer cluster at {url} did not answer: this view was explained by the page's own server, which is slower when many use it."
UNREADABLE_UPLOAD = "The upload could not be read ({reason}). Please upload it again."

NO_RELU = (
    "ℹ️ This network has no ReLUs (it uses GELU, SiLU or Hardswish): its guided backprop keeps each "
    "activation's own slope and passes back only positive gradients, our extension of the ReLU rule."
)

UNTRAINED_BANNER = """
### ⚠️ Untrained model: {model} is running on random weights
Its predictions and maps are **meaningless**. {reason} Then restart the app.
"""

API_DESCRIPTION = (
    "Explain an image: returns the five panels (original, Grad-CAM heatmap, overlay, guided backprop, "
    "Guided Grad-CAM) for the chosen model, layer (1-4) and class (None for the top prediction), "
    "the top-k predictions, and a status line naming the weights in use."
)

COMPARE_HELP = """
Every method below explains the same class at the same layer. Each map is then *tested*: delete the
pixels it calls most important, most important first, and watch the class probability (deletion;
a faithful map makes it fall fast, so a **low** area under the curve is better), or start from a
blurred image and put those pixels back first (insertion; a **high** area is better). A sharper,
prettier map is not always the more faithful one. Score-CAM, Ablation-CAM and the scores run the
network, so this takes a few seconds.
"""

# ----- hide and see (demo/hide.py) ---------------------------------------------------------------

HIDE_TITLE = "Hide and see: cover what the map points at, and watch the prediction"
HIDE_HELP = """
If the map is right about *where* the evidence is, hiding that part of the image should make the
class less likely. **Paint** over part of the image with the brush (the pencil on the left of the
picture), choose what the hidden pixels become, and click **Hide and explain**. Or let the map
choose: **hide its hottest 10%, 20% or 50%** of pixels. The edited image is explained afresh, for
the class on screen and at the slider's layer; both maps share one colour scale, so a map that
cools down reads darker.
"""
HIDE_EDITOR_LABEL = "Paint over what to hide"
HIDE_FILL_LABEL = "Hidden pixels become"
HIDE_FILL_INFO = "The mean colour is zero input to the network; blur keeps the colours but not the shapes"
FILL_BLUR = "blur"
FILL_MEAN = "mean colour (zero input)"
FILL_NOISE = "noise"
HIDE_RUN = "Hide and explain"
HIDE_HOTTEST_LABEL = "…or hide the map's hottest pixels"
HIDE_HOTTEST_RUN = "Hide the hottest pixels and explain"
HIDE_BEFORE = "Map before (original)"
HIDE_AFTER = "Map after (what was hidden)"
HIDE_TOP_AFTER = "Top-5 after hiding"
HIDE_RESULT = "**{label}**: {before} → {after} ({points} points)"
HIDE_WHAT = "Hidden: {share} of the image, as {fill}. Grad-CAM at {layer}, before and after on one colour scale."
HIDE_HOTTER = "The map after is hotter than before (its peak is {times}× the original's), so it is cut at the top of the scale."
HIDE_NOTHING_PAINTED = "Nothing is painted yet: paint over part of the image with the brush, or hide the map's hottest pixels."

# ----- the Live tab (demo/live.py) --------------------------------------------------------------

LIVE_INTRO = """
### Live: Grad-CAM on your camera
Hold an object up to the camera and watch the heatmap follow it. Click **Click to Access Webcam**,
then the **record** button. Each frame is explained at a reduced size ({side} px on its short side)
so that the view keeps up; at layer4 a frame needs a single forward pass. **Pause** freezes the
frame and opens it in the Explore tab with all five panels. At most {cap} live streams run at once
on this server, and a stream stops after {minutes} minutes (press record again).
"""

LIVE_CAMERA_LABEL = "Your camera"
LIVE_MODEL_INFO = "resnet18 is the fastest"
LIVE_LAYER_INFO = "4 needs no backward pass: the fastest"
LIVE_CLASS_LABEL = "Explain which class?"
LIVE_CLASS_INFO = "Type to search the 1000 classes"
LIVE_TOP_1 = "top-1: follow the prediction"
LIVE_COLORMAP_LABEL = "Colormap"
LIVE_OPACITY_LABEL = "Opacity"
LIVE_PAUSE = "Pause: explain this frame in full"
LIVE_RESUME = "Resume live"
LIVE_OVERLAY_LABEL = "Live Grad-CAM"
LIVE_CAMERA_TROUBLE = "The camera does not start?"

LIVE_WAITING = "Start the camera: the frame rate and latency appear here."

LIVE_FULL = (
    "The live view is full: {cap} live streams are running on this server, its limit. "
    "Yours starts by itself as soon as one ends. Meanwhile, the Explore tab works as usual."
)

#: While a request waits for room in the memory budget for models (core.admission).
MODEL_SLOT_WAIT = "Waiting for a model slot: {ahead} ahead…"
MODEL_SLOT_NEXT = "Waiting for a model slot: next in line, until a model in use is freed…"
LIVE_READOUT = (
    "**{fps} frames/s** · latency ≤ {interval} (one frame in flight) · server {server} ms a frame "
    "(network {network} ms) · **{model}** at layer{layer} (`{stage}`, {how}) · input {width}×{height} in {precision}{untrained}"
)
LIVE_CLOSED_FORM = "closed form, no backward pass"
LIVE_BACKWARD = "one backward pass to the stage"
LIVE_UNTRAINED = " · ⚠️ untrained weights: the labels are meaningless"
LIVE_FRAME_FAILED = "This frame could not be explained ({error}); the stream goes on."

LIVE_NOTHING_TO_PAUSE = "No live frame yet: start the camera (record button) first."

LIVE_CAMERA_HELP = """
- **The browser asked and you said no**, or it never asked: click the camera icon (or the padlock)
  in the address bar, allow the camera for this site, and reload the page.
- **"No camera" or a black picture**: another program (a video call) may hold the camera; close it.
  On a laptop, check the camera's privacy switch or shutter.
- **The page is not on `localhost` or `https://`**: browsers only give the camera to secure pages.
  Open the app through https (a Hugging Face Space is), or on the machine that runs it.
- **No camera at all**: use the Explore tab with a photo instead; it shows the same maps in full.
"""

# ----- the teaching tools (demo/teaching.py) ----------------------------------------------------

SANITY_TITLE = "Sanity check: does the map depend on the model?"
SANITY_RUN = "Run the sanity check for this class"
SANITY_GRID = "Sanity-check grid"
SANITY_RANK = "Rank correlation with the original map"
SANITY_SSIM = "Structural similarity (SSIM) with the original map"
COMPARE_MODELS_TITLE = "Compare models: do they look at the same thing?"
COMPARE_MODELS_CHOICE = "Models (two or three)"
COMPARE_MODELS_RUN = "Compare these models on this image and class"
COMPARE_MODELS_GALLERY = "Each model at its layer4"
COMPARE_MODELS_COUNT = "choose two or three models to compare (you chose {count})"
COMPARE_MODELS_HEADING = "**{label}** (class {index}) explained by each model at its layer4 position."
COMPARE_MODELS_COLUMNS = "| model | its probability for this class | its own top prediction |"
COMPARE_MODELS_UNTRAINED = " (untrained)"
SANITY_SUMMARY = (
    "**{label}** (class {index}), Grad-CAM at {layer}. With the head and {step} randomised, the rank correlation "
    "with the original map is: {figures}. Near 1 means the map barely changed although the network did."
)
SANITY_BLANK = "undefined (a blank map)"
SANITY_UNTRAINED = " ⚠️ The model is untrained here, so the 'original' map is itself from random weights."
HANDOUT_TITLE = "Handout: this view on one printable page"
HANDOUT_COLOURS = "Heatmap colours"
HANDOUT_COLOURS_INFO = "cividis and viridis grow lighter steadily: they print well in black and white"
HANDOUT_AS_PAGE = "as on the page"
HANDOUT_FILE_FORMAT = "File"
HANDOUT_RUN = "Download handout"
HANDOUT_FILE = "Your handout"
HANDOUT_PREVIEW = "Preview"
#: The handout's own sentences, drawn into the picture (core.handout's English).
HANDOUT = HandoutWords()

SANITY_HELP = """
The network's weights are replaced by random ones, one part at a time from the top (the head, then
layer4, …, down to the stem), and the same class is explained again after each step. **A map that
still looks the same after the weights it claims to explain were thrown away cannot be explaining
the model:** watch guided backprop keep its picture while Grad-CAM's changes (Adebayo et al.,
*Sanity Checks for Saliency Maps*, NeurIPS 2018). Runs seven network passes on a private copy.
"""

COMPARE_MODELS_HELP = """
The same image and the same class for two or three networks side by side, each at its last stage
(layer4), with each network's own probability for that class. Do different architectures look at
the same evidence? Classes are matched by number, which all ImageNet models share.
"""

HANDOUT_HELP = """
One A4 page of the current view (model, layer, class, method) with what each panel means and the
class at every depth. cividis and viridis grow lighter steadily, so they still read when printed
in black and white.
"""

#: The in-page viewer's captions ({method}: the CAM method's name) and its note while a map is on its way.
VIEWER_TITLES = ("Original", "{method} heatmap", "Overlay", "Guided backprop", "Guided {method}")
VIEWER_STRIP = "The selected class at layer1 → layer4 (click any panel to enlarge it)"
VIEWER_COMPUTING = "still being computed"
