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
