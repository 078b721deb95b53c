"""The words on the page, in Korean: every name of demo/texts.py, in the same order.

Class names stay as torchvision gives them (English), and so do method and model names.
"""

from core.handout import HandoutWords

TITLE = "Grad-CAM 탐색기"

INTRO = (
    "# Grad-CAM 탐색기\n"
    "사진을 올리면 ImageNet 신경망이 **왜** 그렇게 예측하는지 볼 수 있습니다. "
    "설명할 클래스를 고르고, 슬라이더로 신경망의 깊이를 오가며, Grad-CAM을 "
    "가이드 역전파, Guided Grad-CAM과 비교해 보세요 (Selvaraju 외, ICCV 2017)."
)

HELP = """
**Grad-CAM 히트맵.** 신경망의 마지막 합성곱 층들은 특징 맵 *A*를 가지고 있습니다. Grad-CAM은
각 특징 맵이 커지면 고른 클래스의 점수 *y<sup>c</sup>*가 얼마나 오를지를 묻습니다. 기울기
∂*y<sup>c</sup>*/∂*A<sub>k</sub>*를 이미지 전체에 대해 평균 내어 맵마다 가중치 하나를 얻고, 그 가중치로
맵들을 더한 뒤 양수인 부분만 남깁니다. 빨간색은 "이 영역이 클래스 점수를 높였다"는 뜻입니다.

**가이드 역전파.** 입력 픽셀 하나하나에 대한 클래스 점수의 기울기인데, 각 ReLU가 양의 기울기만
통과시킵니다. 신경망이 반응하는 가는 윤곽선과 질감이 보이지만, 어느 클래스를 골라도 거의 똑같아
보입니다. 즉 클래스를 *구별하지 못합니다*.

**Guided Grad-CAM.** 가이드 역전파에 Grad-CAM 맵을 곱한 것입니다. 가이드 역전파의 섬세함은 그대로이되,
Grad-CAM이 클래스의 근거가 있다고 말하는 곳에만 남습니다. 다른 클래스를 골라 그 자리가 옮겨 가는 것을 보세요.

**1층부터 4층까지.** 앞쪽 층(layer1, layer2)은 작은 조각만 보기 때문에 맵이 선명하고 국소적이지만,
물체보다는 윤곽과 색에 더 반응합니다. layer4는 물체 전체를 봅니다. 맵은 거칠지만(224픽셀 입력이면
7×7 격자) 클래스를 가장 잘 구별합니다. 아래쪽 띠는 같은 클래스를 네 깊이에서 모두 보여 줍니다.

**반사실(counterfactual).** 이 스위치를 켜면 맵이 클래스에 *반대하는* 영역을 보여 줍니다. 그 영역을
지우면 신경망은 그 클래스를 더 확신하게 됩니다. 고양이와 개가 함께 있는 사진에서 "고양이"의
반사실 맵은 대개 개를 밝힙니다.

**학습되지 않은 가중치.** 배너에 모델이 학습되지 않았다고 나오면, 예측과 맵은 무작위입니다.
학습 없이 방법 자체가 무엇을 하는지 보는 데에는 쓸모가 있지만, 이미지에 대해 배우는 데에는 쓸 수 없습니다.
"""

# ----- the Explore tab's controls (demo/ui.py) ----------------------------------------------------

TAB_EXPLORE = "탐색"
TAB_LIVE = "실시간"
UPLOAD_LABEL = "내 이미지"
EXAMPLES_LABEL = "예시 (하나를 클릭하세요)"
MODEL_LABEL = "모델"
LAYER_LABEL = "층"
LAYER_INFO = "1 = 얕은 층: 선명하고 국소적 · 4 = 깊은 층: 거칠지만 클래스를 잘 구별"
LAYER_POSITIONS = "얕고 선명함 (1) → 깊고 클래스를 잘 구별함 (4): {positions}"
TOP_K_LABEL = "상위 k개 예측"
METHOD_LABEL = "방법"
METHOD_INFO = "아래에서 모든 방법을 충실도 점수와 함께 비교할 수 있습니다"
MORE_CONTROLS = "설정 더 보기"
COLORMAP_LABEL = "색상표 (cividis는 색각 이상이 있어도 잘 보입니다)"
OPACITY_LABEL = "오버레이 불투명도"
COUNTERFACTUAL_LABEL = "반사실: 클래스에 반대하는 근거 보기"
BOX_LABEL = "오버레이에 위치 상자 표시 (논문 §4.1)"
BOX_THRESHOLD_LABEL = "상자 임계값: 맵 최댓값에 대한 비율 (논문: 0.15)"
PRECISION_LABEL = "정밀도"
PRECISION_INFO = "bfloat16은 이를 직접 지원하는 프로세서에서 신경망을 더 빨리 돌립니다. 맵은 float32와 r ≥ 0.998로 일치합니다"
PRECISION_FAST = "빠름 (bfloat16)"
PRECISION_EXACT = "정확함 (float32)"
PREDICTIONS_LABEL = "예측"
PREDICTIONS_UNTRAINED = "예측 (학습되지 않은 모델)"
TOP_CLASS_LABEL = "어떤 예측을 설명할까요?"
ANY_CLASS_LABEL = "…또는 1000개 클래스 중에서 검색"
FULL_SIZE_BUTTON = "⬇ 원본 해상도 패널 (PNG)"
FULL_SIZE_LABEL = "원본 해상도 패널"
COMPARE_TITLE = "방법 비교: 어떤 설명을 믿을 수 있을까?"
COMPARE_RUN = "이 클래스와 층에서 모든 방법 비교하기"
COMPARE_GALLERY = "방법별 결과 나란히 보기"
COMPARE_DELETION = "삭제: 가장 중요한 픽셀부터 지움 (낮을수록 좋음)"
COMPARE_INSERTION = "삽입: 가장 중요한 픽셀부터 되살림 (높을수록 좋음)"
HELP_TITLE = "지금 무엇을 보고 있나요?"
COMPARE_HEADING = "layer{layer}의 **{label}**: 삭제 넓이가 낮고 삽입 넓이가 높을수록 더 충실한 맵입니다."
COMPARE_COLUMNS = "| 방법 | 삭제 AUC ↓ | 삽입 AUC ↑ | 확신도 하락 ↓ |"

# ----- the status line and the errors (demo/status.py, demo/common.py) ------------------------

STATUS = "**{model}** · 가중치: {weights}{untrained} · 모델 입력 {width}×{height} · 맵 계산: {precision}{timing}"
STATUS_UNTRAINED = " · ⚠️ **학습되지 않음: 예측에 의미가 없습니다**"
STATUS_TIMING = " · {ms} ms"
WEIGHTS_RANDOM = "앱이 무작위 가중치로 시작되었습니다 (GRADCAM_WEIGHTS=random)."
CANNOT_EXPLAIN = "설명할 수 없습니다"
INVALID_REQUEST = "잘못된 요청: {reason}"
NO_IMAGE = "먼저 이미지를 올리세요 (또는 예시 중 하나를 클릭하세요)."
CLUSTER_UNREACHABLE = "{url}의 설명 클러스터가 응답하지 않았습니다. 잠시 후 다시 시도하거나, 이 페이지를 운영하는 분께 클러스터를 확인해 달라고 하세요."
CLUSTER_FALLBACK = "⚠️ {url}의 설명 클러스터가 응답하지 않아 이 화면은 페이지 자체 서버에서 계산했습니다. 사용자가 많으면 더 느립니다."
UNREADABLE_UPLOAD = "올린 파일을 읽을 수 없습니다 ({reason}). 다시 올려 주세요."

NO_RELU = (
    "ℹ️ 이 신경망에는 ReLU가 없습니다 (GELU, SiLU 또는 Hardswish를 씁니다). 여기서 가이드 역전파는 각 "
    "활성화 함수의 기울기를 그대로 쓰고 양의 기울기만 되돌려 보냅니다. ReLU 규칙을 우리가 확장한 것입니다."
)

UNTRAINED_BANNER = """
### ⚠️ 학습되지 않은 모델: {model}이(가) 무작위 가중치로 실행 중입니다
예측과 맵에 **의미가 없습니다**. {reason} 그런 다음 앱을 다시 시작하세요.
"""

API_DESCRIPTION = (
    "이미지를 설명합니다. 고른 모델, 층(1-4), 클래스(None이면 최상위 예측)에 대한 다섯 패널(원본, Grad-CAM 히트맵, "
    "오버레이, 가이드 역전파, Guided Grad-CAM)과 상위 k개 예측, 사용 중인 가중치를 알려 주는 상태 줄을 돌려줍니다."
)

COMPARE_HELP = """
아래의 모든 방법은 같은 층에서 같은 클래스를 설명합니다. 그런 다음 각 맵을 *검증*합니다. 맵이 가장 중요하다고
한 픽셀부터 차례로 지우면서 클래스 확률을 지켜보거나(삭제: 충실한 맵이라면 확률이 빨리 떨어지므로 곡선 아래 넓이가
**낮을수록** 좋습니다), 흐리게 한 이미지에서 시작해 그 픽셀들부터 되살립니다(삽입: 넓이가 **높을수록** 좋습니다).
더 선명하고 보기 좋은 맵이 언제나 더 충실한 것은 아닙니다. Score-CAM, Ablation-CAM과 점수 계산은 신경망을
여러 번 돌리므로 몇 초가 걸립니다.
"""

# ----- hide and see (demo/hide.py) ---------------------------------------------------------------

HIDE_TITLE = "가리고 보기: 맵이 가리키는 곳을 가리고 예측이 어떻게 바뀌는지 보기"
HIDE_HELP = """
맵이 근거가 *어디에* 있는지 제대로 짚었다면, 이미지에서 그 부분을 가렸을 때 그 클래스일 확률이 낮아져야 합니다.
붓(그림 왼쪽의 연필)으로 이미지의 일부를 **칠하고**, 가려진 픽셀을 무엇으로 채울지 고른 다음 **가리고 설명하기**를
누르세요. 맵에게 고르게 할 수도 있습니다. **맵에서 가장 뜨거운 10%, 20%, 50%** 의 픽셀을 가려 보세요. 고친 이미지는
화면의 클래스와 슬라이더의 층에 대해 처음부터 다시 설명됩니다. 두 맵은 같은 색 눈금을 쓰기 때문에, 맵이 식으면 더
어둡게 보입니다.
"""
HIDE_EDITOR_LABEL = "가릴 곳을 칠하세요"
HIDE_FILL_LABEL = "가려진 픽셀을 채우는 방법"
HIDE_FILL_INFO = "평균 색은 신경망에 0을 입력하는 것과 같습니다. 흐림은 색은 남기고 모양만 지웁니다"
FILL_BLUR = "흐림"
FILL_MEAN = "평균 색 (0 입력)"
FILL_NOISE = "잡음"
HIDE_RUN = "가리고 설명하기"
HIDE_HOTTEST_LABEL = "…또는 맵에서 가장 뜨거운 픽셀 가리기"
HIDE_HOTTEST_RUN = "가장 뜨거운 픽셀을 가리고 설명하기"
HIDE_BEFORE = "가리기 전 맵 (원본)"
HIDE_AFTER = "가린 뒤 맵 (가린 부분 포함)"
HIDE_TOP_AFTER = "가린 뒤 상위 5개 예측"
HIDE_RESULT = "**{label}**: {before} → {after} ({points}%p)"
HIDE_WHAT = "이미지의 {share}를 {fill}(으)로 가렸습니다. {layer}의 Grad-CAM을 가리기 전과 뒤에 같은 색 눈금으로 보여 줍니다."
HIDE_HOTTER = "가린 뒤의 맵이 원래보다 더 뜨겁습니다 (최댓값이 원래의 {times}배). 그래서 눈금의 맨 위에서 잘립니다."
HIDE_NOTHING_PAINTED = "아직 칠한 곳이 없습니다. 붓으로 이미지의 일부를 칠하거나, 맵에서 가장 뜨거운 픽셀을 가려 보세요."

# ----- the Live tab (demo/live.py) --------------------------------------------------------------

LIVE_INTRO = """
### 실시간: 카메라로 보는 Grad-CAM
물체를 카메라 앞에 들고 히트맵이 따라오는 것을 보세요. **Click to Access Webcam**을 클릭한 다음
**녹화** 버튼을 누르세요. 화면이 끊기지 않도록 각 프레임은 줄인 크기(짧은 변 {side}픽셀)로 설명합니다.
layer4에서는 프레임마다 신경망을 한 번만 앞으로 돌리면 됩니다. **일시 정지**를 누르면 그 프레임이 멈추고
탐색 탭에서 다섯 패널로 모두 열립니다. 이 서버에서는 실시간 스트림이 한 번에 최대 {cap}개까지 돌아가고,
스트림은 {minutes}분 뒤에 멈춥니다 (녹화를 다시 누르세요).
"""

LIVE_CAMERA_LABEL = "내 카메라"
LIVE_MODEL_INFO = "resnet18이 가장 빠릅니다"
LIVE_LAYER_INFO = "4는 역전파가 필요 없어 가장 빠릅니다"
LIVE_CLASS_LABEL = "어떤 클래스를 설명할까요?"
LIVE_CLASS_INFO = "입력해서 1000개 클래스를 검색하세요"
LIVE_TOP_1 = "top-1: 예측을 따라가기"
LIVE_COLORMAP_LABEL = "색상표"
LIVE_OPACITY_LABEL = "불투명도"
LIVE_PAUSE = "일시 정지: 이 프레임을 자세히 설명하기"
LIVE_RESUME = "실시간 다시 시작"
LIVE_OVERLAY_LABEL = "실시간 Grad-CAM"
LIVE_CAMERA_TROUBLE = "카메라가 켜지지 않나요?"

LIVE_WAITING = "카메라를 켜세요. 초당 프레임 수와 지연 시간이 여기에 나타납니다."

LIVE_FULL = (
    "실시간 보기가 꽉 찼습니다. 이 서버의 한도인 {cap}개의 실시간 스트림이 돌아가고 있습니다. "
    "하나가 끝나는 대로 여러분의 스트림이 저절로 시작됩니다. 그동안 탐색 탭은 평소처럼 쓸 수 있습니다."
)

LIVE_READOUT = (
    "**초당 {fps}프레임** · 지연 ≤ {interval} (한 번에 한 프레임씩) · 서버에서 프레임당 {server} ms "
    "(신경망 {network} ms) · **{model}**, layer{layer} (`{stage}`, {how}) · 입력 {width}×{height}, {precision}{untrained}"
)
LIVE_CLOSED_FORM = "닫힌 식, 역전파 없음"
LIVE_BACKWARD = "그 단계까지 역전파 한 번"
LIVE_UNTRAINED = " · ⚠️ 학습되지 않은 가중치: 클래스 이름에 의미가 없습니다"
LIVE_FRAME_FAILED = "이 프레임은 설명하지 못했습니다 ({error}). 스트림은 계속됩니다."

LIVE_NOTHING_TO_PAUSE = "아직 실시간 프레임이 없습니다. 먼저 카메라를 켜세요 (녹화 버튼)."

LIVE_CAMERA_HELP = """
- **브라우저가 물었는데 거부했거나**, 아예 묻지 않았다면: 주소창의 카메라 아이콘(또는 자물쇠)을 클릭해
  이 사이트에 카메라를 허용하고 페이지를 새로 고치세요.
- **"카메라 없음"이나 검은 화면**: 다른 프로그램(화상 통화 등)이 카메라를 쓰고 있을 수 있으니 닫아 주세요.
  노트북이라면 카메라의 개인 정보 보호 스위치나 덮개를 확인하세요.
- **페이지 주소가 `localhost`나 `https://`가 아니라면**: 브라우저는 안전한 페이지에만 카메라를 내줍니다.
  https로(Hugging Face Space는 https입니다) 또는 앱을 실행하는 컴퓨터에서 여세요.
- **카메라가 아예 없다면**: 사진으로 탐색 탭을 쓰세요. 같은 맵을 모두 보여 줍니다.
"""

# ----- the teaching tools (demo/teaching.py) ----------------------------------------------------

SANITY_TITLE = "건전성 검사: 맵이 정말 모델에 따라 달라질까?"
SANITY_RUN = "이 클래스로 건전성 검사 실행하기"
SANITY_GRID = "건전성 검사 격자"
SANITY_RANK = "원래 맵과의 순위 상관"
SANITY_SSIM = "원래 맵과의 구조적 유사도 (SSIM)"
COMPARE_MODELS_TITLE = "모델 비교: 같은 것을 보고 있을까?"
COMPARE_MODELS_CHOICE = "모델 (두세 개)"
COMPARE_MODELS_RUN = "이 이미지와 클래스로 모델 비교하기"
COMPARE_MODELS_GALLERY = "각 모델의 layer4"
COMPARE_MODELS_COUNT = "비교할 모델을 두세 개 고르세요 (지금 {count}개를 골랐습니다)"
COMPARE_MODELS_HEADING = "**{label}** (클래스 {index})을(를) 각 모델의 layer4 위치에서 설명했습니다."
COMPARE_MODELS_COLUMNS = "| 모델 | 이 클래스에 대한 확률 | 그 모델의 최상위 예측 |"
COMPARE_MODELS_UNTRAINED = " (학습되지 않음)"
SANITY_SUMMARY = (
    "**{label}** (클래스 {index}), {layer}의 Grad-CAM. 헤드부터 {step}까지 무작위로 바꾸었을 때 원래 맵과의 순위 상관은 "
    "{figures}입니다. 1에 가까우면 신경망이 바뀌었는데도 맵이 거의 그대로라는 뜻입니다."
)
SANITY_BLANK = "정의되지 않음 (빈 맵)"
SANITY_UNTRAINED = " ⚠️ 여기서는 모델이 학습되지 않았기 때문에 '원래' 맵부터가 무작위 가중치에서 나온 것입니다."
HANDOUT_TITLE = "유인물: 지금 보이는 화면을 인쇄용 한 장으로"
HANDOUT_COLOURS = "히트맵 색"
HANDOUT_COLOURS_INFO = "cividis와 viridis는 고르게 밝아지므로 흑백으로 인쇄해도 잘 보입니다"
HANDOUT_AS_PAGE = "화면과 같게"
HANDOUT_FILE_FORMAT = "파일 형식"
HANDOUT_RUN = "유인물 내려받기"
HANDOUT_FILE = "내 유인물"
HANDOUT_PREVIEW = "미리 보기"
HANDOUT = HandoutWords(
    title_for="{model}은(는) “{label}”의 근거로 어디를 볼까?",
    title_against="{model}이(가) “{label}”에 반대하는 근거로 보는 곳은?",
    facts="모델: {model} ({weights})  ·  층: {layer} ({where})  ·  클래스 {index}: {label}, 확률 {probability}  ·  방법: {method}",
    grid="{grid} 격자",
    counterfactual="반사실: 맵은 클래스에 반대하는 근거를 보여 줍니다",
    untrained="주의: 이 모델은 학습되지 않았습니다(무작위 가중치). 예측과 맵에 의미가 없습니다.",
    seen="{width}x{height} 픽셀로 크기를 바꾸어",
    letterboxed=", {width}x{height} 안에 여백을 두고 넣어",
    raised="높인",
    lowered="낮춘",
    panels=(
        ("원본", "사진입니다. 모델은 이 사진을 {seen}, 자르지 않고 통째로 보았습니다."),
        (
            "{method} 히트맵",
            "{layer}의 특징이 클래스 점수를 {effect} 곳입니다. 밝을수록 강한 근거입니다. "
            "{grid} 격자의 칸마다 값이 하나씩이라 거칠고, 이미지 크기로 부드럽게 늘린 것입니다.",
        ),
        ("오버레이", "히트맵을 이미지 위에 겹친 것입니다. 근거가 어떤 물체나 부분에 있는지 볼 수 있습니다."),
        (
            "가이드 역전파",
            "어느 픽셀을 바꾸면 점수가 가장 많이 오를지를, 양의 신호만 되돌려 보내며 구한 것입니다. "
            "윤곽선은 섬세하지만 어느 클래스든 거의 같아서, 클래스를 구별하지 못합니다.",
        ),
        (
            "Guided Grad-CAM",
            "가이드 역전파에 히트맵을 곱한 것입니다. 섬세함은 그대로이되, 클래스의 근거가 있는 곳에만 남습니다. "
            "회색 = 영향 없음, 밝거나 어두움 = 점수를 올리거나 내리는 픽셀.",
        ),
    ),
    depth="같은 클래스를 layer1부터 layer4까지 ({method} 오버레이)",
    depth_same_grid="여기서는 네 단계 모두 같은 {grid} 조각 격자를 씁니다. 깊이에 따라 특징의 뜻이 달라질 뿐, 해상도는 같습니다.",
    depth_grids=(
        "앞쪽 층은 작은 조각을 봅니다. 맵이 선명하고 국소적이며 윤곽과 색을 따라갑니다. 마지막 층은 물체 전체를 봅니다. "
        "맵은 거칠지만 클래스를 가장 잘 구별합니다."
    ),
    footer="Grad-CAM: Selvaraju 외, ICCV 2017. 가이드 역전파: Springenberg 외, ICLR-W 2015. Grad-CAM 탐색기로 만들었습니다.",
    colours="색 읽는 법",
    low="낮음",
    high="강한 근거",
    lowers="점수를 내림",
    raises="점수를 올림",
    colormap_note="히트맵 색상표: {colormap}.",
    printable=" 밝기가 고르게 올라가서 흑백으로 인쇄해도 잘 보입니다.",
    not_printable=" 흑백으로 인쇄하려면 cividis나 viridis를 고르세요.",
)

SANITY_HELP = """
신경망의 가중치를 위쪽부터(헤드, 그다음 layer4, …, 맨 아래 stem까지) 한 부분씩 무작위 값으로 바꾸면서, 단계마다
같은 클래스를 다시 설명합니다. **설명하려던 가중치를 버렸는데도 맵이 그대로라면, 그 맵은 모델을 설명하는 것이
아닙니다.** Grad-CAM은 바뀌는데 가이드 역전파는 그림을 그대로 유지하는 것을 지켜보세요 (Adebayo 외,
*Sanity Checks for Saliency Maps*, NeurIPS 2018). 복사본 위에서 신경망을 일곱 번 돌립니다.
"""

COMPARE_MODELS_HELP = """
같은 이미지와 같은 클래스를 두세 개의 신경망으로 나란히 봅니다. 각 신경망은 마지막 단계(layer4)에서 설명하고,
그 클래스에 대한 각자의 확률을 함께 보여 줍니다. 구조가 다른 신경망들도 같은 근거를 볼까요? 클래스는 번호로
맞추며, 모든 ImageNet 모델이 같은 번호를 씁니다.
"""

HANDOUT_HELP = """
지금 보이는 화면(모델, 층, 클래스, 방법)을 A4 한 장으로 만듭니다. 각 패널이 무슨 뜻인지와 깊이별 클래스 맵이
함께 들어갑니다. cividis와 viridis는 고르게 밝아지므로 흑백으로 인쇄해도 잘 읽힙니다.
"""

#: While a request waits for room in the memory budget for models (core.admission).
MODEL_SLOT_WAIT = "모델 자리를 기다리는 중: 앞에 {ahead}개 요청…"
MODEL_SLOT_NEXT = "모델 자리를 기다리는 중: 다음 차례예요. 사용 중인 모델이 풀릴 때까지 기다립니다…"

#: The in-page viewer's captions ({method}: the CAM method's name) and its note while a map is on its way.
VIEWER_TITLES = ("원본", "{method} 히트맵", "오버레이", "가이드 역전파", "가이드 {method}")
VIEWER_STRIP = "선택한 클래스를 layer1 → layer4에서 보기 (패널을 누르면 크게 보입니다)"
VIEWER_COMPUTING = "아직 계산 중"
