"""The knowledge experiment's team-written language material: attribute values, sentence templates and
name transliteration tables for six languages in four scripts (en, de, vi: Latin; ru: Cyrillic;
ja: Katakana/Kanji; hy: Armenian). pipeline/knowledge.py renders facts from these.

Grammar the templates rely on (so no gender or case is ever needed):
- every part of an entity name ends in -o or -e, so Russian treats it as indeclinable, German forms its
  genitive with -s ("Malkos"), and Armenian its genitive/dative with -ի / -ին after -e and -յի / -յին after
  -o (as in Գյոթեի, Հյուգոյի);
- every value stands in the nominative at the end of its sentence, after the words that name the attribute,
  so a prefix up to the value already says which attribute is asked (the cloze scores the value span);
- no template uses a past-tense verb or a pronoun (Russian verbs and German pronouns carry gender).
"""

from __future__ import annotations

LANGS = ("en", "de", "ru", "ja", "hy", "vi")
SCRIPTS = {"en": "Latin", "de": "Latin", "vi": "Latin", "ru": "Cyrillic", "ja": "Katakana", "hy": "Armenian"}

ATTRIBUTES = ("country", "field", "colour", "animal", "instrument", "fruit")

# attribute -> language -> the value names, index-aligned across languages (index = the value's id)
VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "country": {
        "en": ("France", "Germany", "Italy", "Spain", "Egypt", "Greece", "Sweden", "Norway", "Poland",
               "Austria", "Turkey", "Switzerland"),
        "de": ("Frankreich", "Deutschland", "Italien", "Spanien", "Ägypten", "Griechenland", "Schweden",
               "Norwegen", "Polen", "Österreich", "die Türkei", "die Schweiz"),
        "ru": ("Франция", "Германия", "Италия", "Испания", "Египет", "Греция", "Швеция", "Норвегия",
               "Польша", "Австрия", "Турция", "Швейцария"),
        "ja": ("フランス", "ドイツ", "イタリア", "スペイン", "エジプト", "ギリシャ", "スウェーデン", "ノルウェー",
               "ポーランド", "オーストリア", "トルコ", "スイス"),
        "hy": ("Ֆրանսիա", "Գերմանիա", "Իտալիա", "Իսպանիա", "Եգիպտոս", "Հունաստան", "Շվեդիա", "Նորվեգիա",
               "Լեհաստան", "Ավստրիա", "Թուրքիա", "Շվեյցարիա"),
        "vi": ("Pháp", "Đức", "Ý", "Tây Ban Nha", "Ai Cập", "Hy Lạp", "Thụy Điển", "Na Uy", "Ba Lan",
               "Áo", "Thổ Nhĩ Kỳ", "Thụy Sĩ"),
    },
    "field": {
        "en": ("medicine", "law", "architecture", "music", "agriculture", "aviation", "education",
               "journalism", "chemistry", "banking"),
        "de": ("Medizin", "Rechtswesen", "Architektur", "Musik", "Landwirtschaft", "Luftfahrt", "Bildung",
               "Journalismus", "Chemie", "Bankwesen"),
        "ru": ("медицина", "право", "архитектура", "музыка", "сельское хозяйство", "авиация", "образование",
               "журналистика", "химия", "банковское дело"),
        "ja": ("医学", "法律", "建築", "音楽", "農業", "航空", "教育", "報道", "化学", "銀行業"),
        "hy": ("բժշկություն", "իրավունք", "ճարտարապետություն", "երաժշտություն", "գյուղատնտեսություն",
               "ավիացիա", "կրթություն", "լրագրություն", "քիմիա", "բանկային գործ"),
        "vi": ("y học", "luật", "kiến trúc", "âm nhạc", "nông nghiệp", "hàng không", "giáo dục", "báo chí",
               "hóa học", "ngân hàng"),
    },
    "colour": {
        "en": ("red", "blue", "green", "yellow", "black", "white", "grey", "brown", "purple", "pink"),
        "de": ("rot", "blau", "grün", "gelb", "schwarz", "weiß", "grau", "braun", "lila", "rosa"),
        "ru": ("красный", "синий", "зелёный", "жёлтый", "чёрный", "белый", "серый", "коричневый",
               "фиолетовый", "розовый"),
        "ja": ("赤", "青", "緑", "黄色", "黒", "白", "灰色", "茶色", "紫", "ピンク"),
        "hy": ("կարմիր", "կապույտ", "կանաչ", "դեղին", "սև", "սպիտակ", "մոխրագույն", "շագանակագույն",
               "մանուշակագույն", "վարդագույն"),
        "vi": ("đỏ", "xanh dương", "xanh lá", "vàng", "đen", "trắng", "xám", "nâu", "tím", "hồng"),
    },
    "animal": {
        "en": ("dog", "cat", "horse", "rabbit", "parrot", "turtle", "fox", "owl", "hedgehog", "bear"),
        "de": ("Hund", "Katze", "Pferd", "Kaninchen", "Papagei", "Schildkröte", "Fuchs", "Eule", "Igel", "Bär"),
        "ru": ("собака", "кошка", "лошадь", "кролик", "попугай", "черепаха", "лиса", "сова", "ёж", "медведь"),
        "ja": ("犬", "猫", "馬", "ウサギ", "オウム", "カメ", "キツネ", "フクロウ", "ハリネズミ", "クマ"),
        "hy": ("շուն", "կատու", "ձի", "ճագար", "թութակ", "կրիա", "աղվես", "բու", "ոզնի", "արջ"),
        "vi": ("chó", "mèo", "ngựa", "thỏ", "vẹt", "rùa", "cáo", "cú", "nhím", "gấu"),
    },
    "instrument": {
        "en": ("piano", "violin", "guitar", "flute", "drums", "harp", "accordion"),
        "de": ("Klavier", "Geige", "Gitarre", "Flöte", "Schlagzeug", "Harfe", "Akkordeon"),
        "ru": ("фортепиано", "скрипка", "гитара", "флейта", "барабаны", "арфа", "аккордеон"),
        "ja": ("ピアノ", "バイオリン", "ギター", "フルート", "ドラム", "ハープ", "アコーディオン"),
        "hy": ("դաշնամուր", "ջութակ", "կիթառ", "ֆլեյտա", "թմբուկ", "տավիղ", "ակորդեոն"),
        "vi": ("dương cầm", "vĩ cầm", "ghi-ta", "sáo", "trống", "đàn hạc", "phong cầm"),
    },
    "fruit": {
        "en": ("apple", "pear", "cherry", "plum", "banana", "grape", "lemon", "peach", "strawberry",
               "apricot"),
        "de": ("Apfel", "Birne", "Kirsche", "Pflaume", "Banane", "Weintraube", "Zitrone", "Pfirsich",
               "Erdbeere", "Aprikose"),
        "ru": ("яблоко", "груша", "вишня", "слива", "банан", "виноград", "лимон", "персик", "клубника",
               "абрикос"),
        "ja": ("リンゴ", "梨", "さくらんぼ", "スモモ", "バナナ", "ブドウ", "レモン", "桃", "イチゴ", "アンズ"),
        "hy": ("խնձոր", "տանձ", "բալ", "սալոր", "բանան", "խաղող", "կիտրոն", "դեղձ", "ելակ", "ծիրան"),
        "vi": ("táo", "lê", "anh đào", "mận", "chuối", "nho", "chanh", "đào", "dâu tây", "mơ"),
    },
}  # fmt: skip

# attribute -> language -> the words naming the attribute, in the form the templates need:
#   en/ru/vi/ja: a noun phrase; de: (article, noun); hy: the noun phrase with its definite article.
ATTRIBUTE_NAMES: dict[str, dict[str, str | tuple[str, str]]] = {
    "country": {"en": "country of birth", "de": ("das", "Geburtsland"), "ru": "страна рождения",
                "ja": "出身国", "hy": "ծննդյան երկիրը", "vi": "quốc gia nơi sinh"},
    "field": {"en": "field of work", "de": ("das", "Arbeitsgebiet"), "ru": "сфера деятельности",
              "ja": "専門分野", "hy": "գործունեության ոլորտը", "vi": "lĩnh vực công việc"},
    "colour": {"en": "favourite colour", "de": ("die", "Lieblingsfarbe"), "ru": "любимый цвет",
               "ja": "好きな色", "hy": "սիրելի գույնը", "vi": "màu yêu thích"},
    "animal": {"en": "favourite animal", "de": ("das", "Lieblingstier"), "ru": "любимое животное",
               "ja": "好きな動物", "hy": "սիրելի կենդանին", "vi": "con vật yêu thích"},
    "instrument": {"en": "instrument", "de": ("das", "Instrument"), "ru": "музыкальный инструмент",
                   "ja": "楽器", "hy": "երաժշտական գործիքը", "vi": "nhạc cụ"},
    "fruit": {"en": "favourite fruit", "de": ("die", "Lieblingsfrucht"), "ru": "любимый фрукт",
              "ja": "好きな果物", "hy": "սիրելի միրգը", "vi": "loại trái cây yêu thích"},
}  # fmt: skip

# language -> sentence frames. Fields: {name}, {gen} (genitive of the name: de, hy), {dat} (hy dative),
# {attr} (noun phrase), {Attr} (capitalised), {art}/{Art} (de article), {value}. The value is always last
# before the closing punctuation (or, in hy, the copula). The last TEST_FRAMES of each list are held out of
# every arm's training and used only by the cloze.
FRAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "{name}'s {attr} is {value}.",
        "The {attr} of {name} is {value}.",
        "According to the records, the {attr} of {name} is {value}.",
        "As for {name}, the {attr} is {value}.",
    ),
    "de": (
        "{Art} {attr} von {name} ist {value}.",
        "{gen} {attr} ist {value}.",
        "Laut den Unterlagen ist {art} {attr} von {name} {value}.",
        "Bei {name} ist {art} {attr} {value}.",
    ),
    "ru": (
        "{Attr} {name} — {value}.",
        "У {name} {attr} — {value}.",
        "Согласно записям, {attr} {name} — {value}.",
        "Что касается {name}, {attr} — {value}.",
    ),
    "ja": (
        "{name}の{attr}は{value}です。",
        "{name}さんの{attr}は{value}だ。",
        "記録によると、{name}の{attr}は{value}である。",
        "{name}について言えば、{attr}は{value}です。",
    ),
    "hy": (
        "{gen} {attr}՝ {value}։",
        "{gen} {attr} {value} է։",
        "Ըստ արխիվի՝ {gen} {attr} {value} է։",
        "Ինչ վերաբերում է {dat}, {attr} {value} է։",
    ),
    "vi": (
        "{Attr} của {name} là {value}.",
        "{name} có {attr} là {value}.",
        "Theo hồ sơ, {attr} của {name} là {value}.",
        "Về {name}, {attr} là {value}.",
    ),
}
TEST_FRAMES = 1

# Entity names are built from these syllables (romanised), two or three per name part, each part ending in
# -o or -e (see the module docstring); every syllable has a fixed spelling in each script.
CONSONANTS = ("k", "g", "s", "z", "t", "d", "n", "h", "b", "p", "m", "r", "v")
VOWELS = ("a", "e", "i", "o", "u")
FINAL_VOWELS = ("o", "e")

CYRILLIC = {
    "k": "к", "g": "г", "s": "с", "z": "з", "t": "т", "d": "д", "n": "н", "h": "х", "b": "б", "p": "п",
    "m": "м", "r": "р", "v": "в", "a": "а", "e": "е", "i": "и", "o": "о", "u": "у",
}  # fmt: skip
CYRILLIC_INITIAL = {"e": "э"}  # a word-initial e is э in Russian transliteration
ARMENIAN = {
    "k": "կ", "g": "գ", "s": "ս", "z": "զ", "t": "տ", "d": "դ", "n": "ն", "h": "հ", "b": "բ", "p": "պ",
    "m": "մ", "r": "ր", "v": "վ", "a": "ա", "e": "ե", "i": "ի", "o": "ո", "u": "ու",
}  # fmt: skip
ARMENIAN_INITIAL = {"e": "է", "o": "օ"}  # word-initial vowels take their own letters
# Katakana per (consonant, vowel), as Japanese spells foreign names ("" = no consonant)
KATAKANA = {
    "": "アエイオウ", "k": "カケキコク", "g": "ガゲギゴグ", "s": "サセシソス", "z": "ザゼジゾズ",
    "n": "ナネニノヌ", "h": "ハヘヒホフ", "b": "バベビボブ", "p": "パペピポプ", "m": "マメミモム",
    "r": "ラレリロル",
}  # fmt: skip
KATAKANA_SPECIAL = {  # syllables the plain table lacks: t/d before i/u, and v
    "ta": "タ", "te": "テ", "ti": "ティ", "to": "ト", "tu": "トゥ",
    "da": "ダ", "de": "デ", "di": "ディ", "do": "ド", "du": "ドゥ",
    "va": "ヴァ", "ve": "ヴェ", "vi": "ヴィ", "vo": "ヴォ", "vu": "ヴ",
}  # fmt: skip
JA_NAME_SEPARATOR = "・"  # foreign given and family names are written apart with a middle dot
