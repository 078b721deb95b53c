"""The words on the page."""

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

# ----- the Live tab (demo/live.py) --------------------------------------------------------------

LIVE_INTRO = """
### Live: Grad-CAM on your camera
Hold an object up to the camera and watch the heatmap follow it. Click **Click to Access Webcam**,
then the **record** button. Each frame is explained at a reduced size ({side} px on its short side)
so that the view keeps up; at layer4 a frame needs a single forward pass. **Pause** freezes the
frame and opens it in the Explore tab with all five panels. At most {cap} live streams run at once
on this server, and a stream stops after {minutes} minutes (press record again).
"""

LIVE_WAITING = "Start the camera: the frame rate and latency appear here."

LIVE_FULL = (
    "The live view is full: {cap} live streams are running on this server, its limit. "
    "Yours starts by itself as soon as one ends. Meanwhile, the Explore tab works as usual."
)

#: While a request waits for room in the memory budget for models (demo.admission).
MODEL_SLOT_WAIT = "Waiting for a model slot: {ahead} ahead…"
MODEL_SLOT_NEXT = "Waiting for a model slot: next in line, until a model in use is freed…"

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
