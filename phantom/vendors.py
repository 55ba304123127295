"""Header styles of the simulated scanners, as data.

Descriptions follow the naming habits of each vendor's cardiac protocols:
Siemens TrueFISP cine ("tfi2d" sequence names, "cine_tf2d" protocols), GE
FIESTA cine, Philips balanced TFE ("BTFE", "sBTFE") and Canon "TrueSSFP".
``{view}`` is replaced by the vendor's view word (SAX, 4CH, ...) and
``{phases}`` by CardiacNumberOfImages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VendorStyle:
    """Header conventions of one vendor's scanner for a cardiac exam."""

    manufacturer: str
    models: dict[float, tuple[str, ...]]  # MagneticFieldStrength (T) -> ManufacturerModelName choices
    software_versions: tuple[str, ...]
    view_words: dict[str, tuple[str, ...]]  # view -> words used in descriptions
    cine_descriptions: tuple[str, ...]
    lge_descriptions: tuple[str, ...]
    cine_sequence_name: str
    lge_sequence_name: str
    cine_scanning_sequence: tuple[str, str]  # ScanningSequence, SequenceVariant
    lge_scanning_sequence: tuple[str, str]
    cine_image_type: tuple[str, ...]
    lge_image_type: tuple[str, ...]
    study_descriptions: tuple[str, ...]
    station_prefix: str


# "LAX_2Ch" and the like follow the UK Biobank protocol names (CINE_segmented_LAX_2Ch).
_VIEW_WORDS_SIEMENS = {"sax": ("sax", "SAX", "short_axis"), "2ch": ("2ch", "LAX_2Ch", "vla"), "3ch": ("3ch", "LAX_3Ch", "3CH"), "4ch": ("4ch", "LAX_4Ch", "hla")}
_VIEW_WORDS_GE = {"sax": ("SAX", "SA", "Short Axis"), "2ch": ("2CH", "2 CH", "VLA"), "3ch": ("3CH", "3CH", "3 CH"), "4ch": ("4CH", "4 CH", "HLA")}
_VIEW_WORDS_PHILIPS = {"sax": ("SA", "SAX", "sa"), "2ch": ("2CH", "2ch", "VLA"), "3ch": ("3CH", "3ch", "3CH"), "4ch": ("4CH", "4ch", "HLA")}

VENDOR_STYLES: dict[str, VendorStyle] = {
    "siemens": VendorStyle(
        manufacturer="SIEMENS",
        models={1.5: ("Aera", "Avanto", "MAGNETOM Sola"), 3.0: ("Skyra", "Prisma", "MAGNETOM Vida")},
        software_versions=("syngo MR E11", "syngo MR D13", "syngo MR XA20"),
        view_words=_VIEW_WORDS_SIEMENS,
        cine_descriptions=("cine_tf2d_{view}", "CINE_segmented_{view}", "tf2d15_retro_iPAT_{view}", "cine_trufi_{view}"),
        lge_descriptions=("de_tfl2d_psir_{view}", "LGE_PSIR_{view}", "de_psir_{view}_MAG"),
        cine_sequence_name="*tfi2d1_{phases}",
        lge_sequence_name="*tfl2d1r",
        cine_scanning_sequence=("GR", "SP"),
        lge_scanning_sequence=("GR\\IR", "SP\\MP"),
        cine_image_type=("ORIGINAL", "PRIMARY", "M", "RETRO", "DIS2D"),
        lge_image_type=("ORIGINAL", "PRIMARY", "M", "DIS2D"),
        study_descriptions=("Cardiac^Routine", "CMR^Function LGE", "Herz^Standard"),
        station_prefix="AWP",
    ),
    "siemens_xa": VendorStyle(
        manufacturer="Siemens Healthineers",
        models={1.5: ("MAGNETOM Sola", "MAGNETOM Altea"), 3.0: ("MAGNETOM Vida", "MAGNETOM Cima.X")},
        software_versions=("syngo MR XA51", "syngo MR XA60"),
        view_words={"sax": ("SAX", "sa_stack"), "2ch": ("2CH", "2ch"), "3ch": ("3CH", "3ch"), "4ch": ("4CH", "4ch")},
        cine_descriptions=("CINE_{view}_BH", "cine_tfi_{view}_retro"),
        lge_descriptions=("LGE_{view}_PSIR_MOCO", "lge_{view}"),
        cine_sequence_name="tfi2d1_{phases}",
        lge_sequence_name="tfl2d1r",
        cine_scanning_sequence=("GR", "SP"),
        lge_scanning_sequence=("GR\\IR", "SP\\MP"),
        cine_image_type=("ORIGINAL", "PRIMARY", "M", "NONE"),
        lge_image_type=("ORIGINAL", "PRIMARY", "M", "NONE"),
        study_descriptions=("Cardiac MRI", "MR HEART W WO CONTRAST"),
        station_prefix="MRC",
    ),
    "ge": VendorStyle(
        manufacturer="GE MEDICAL SYSTEMS",
        models={1.5: ("SIGNA Artist", "Signa HDxt", "Optima MR450w"), 3.0: ("DISCOVERY MR750", "SIGNA Premier", "SIGNA Architect")},
        software_versions=("27\\LX\\MR Software release:RX27.0_R02", "DV26.0_R03", "30\\LX\\MR Software release:MR30.1_R01"),
        view_words=_VIEW_WORDS_GE,
        cine_descriptions=("FIESTA CINE {view}", "{view} FIESTA CINE", "Cine FIESTA {view}", "FIESTA_CINE_{view}"),
        lge_descriptions=("MDE {view}", "2D MDE {view}", "PSIR MDE {view}"),
        cine_sequence_name="fiestacine",
        lge_sequence_name="fgre_mde",
        cine_scanning_sequence=("GR", "SS\\SK"),
        lge_scanning_sequence=("GR\\IR", "SS\\MP\\SK"),
        cine_image_type=("ORIGINAL", "PRIMARY", "OTHER"),
        lge_image_type=("ORIGINAL", "PRIMARY", "OTHER"),
        study_descriptions=("MR CARDIAC MORPH FUNCTION", "CARDIAC MR W/WO", "Heart"),
        station_prefix="GEMR",
    ),
    "philips": VendorStyle(
        manufacturer="Philips Medical Systems",
        models={1.5: ("Ingenia", "Achieva", "Ingenia Ambition X"), 3.0: ("Ingenia", "Achieva dStream", "Ingenia Elition X")},
        software_versions=("5.7.1\\5.7.1.2", "5.4.1\\5.4.1.1", "3.2.3\\3.2.3.2"),
        view_words=_VIEW_WORDS_PHILIPS,
        cine_descriptions=("BTFE_BH {view}", "sBTFE_BH_{view}", "cine_{view}_BTFE", "{view}_sBTFE_CLEAR"),
        lge_descriptions=("T1TFE_PSIR {view}", "LGE_PSIR_{view}", "IR_TFE_{view}"),
        cine_sequence_name="",
        lge_sequence_name="",
        cine_scanning_sequence=("GR", "SS"),
        lge_scanning_sequence=("GR\\IR", "SS\\MP"),
        cine_image_type=("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
        lge_image_type=("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
        study_descriptions=("Cardiac^Functie", "MRI heart", "CMR"),
        station_prefix="PHMR",
    ),
    "philips_enhanced": VendorStyle(
        manufacturer="Philips Healthcare",
        models={1.5: ("Ingenia Ambition X",), 3.0: ("Ingenia Elition X",)},
        software_versions=("5.9.0\\5.9.0.1", "12.1.1\\12.1.1.2"),
        view_words={"sax": ("SA", "sa"), "2ch": ("2CH", "VLA"), "3ch": ("3CH", "3ch"), "4ch": ("4CH", "HLA")},
        cine_descriptions=("sBTFE_{view}_CS", "cine_{view}_sBTFE"),
        lge_descriptions=("PSIR_{view}_3D", "LGE_{view}_PSIR"),
        cine_sequence_name="",
        lge_sequence_name="",
        cine_scanning_sequence=("GR", "SS"),
        lge_scanning_sequence=("GR\\IR", "SS\\MP"),
        cine_image_type=("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
        lge_image_type=("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
        study_descriptions=("CMR", "Cardiac"),
        station_prefix="PHX",
    ),
    "canon": VendorStyle(
        manufacturer="CANON_MEC",
        models={1.5: ("Vantage Orian", "Vantage Elan"), 3.0: ("Vantage Galan 3T", "Vantage Centurian")},
        software_versions=("V8.0*R005", "V10.0*R003"),
        view_words={"sax": ("SA", "short"), "2ch": ("2ch", "VLA"), "3ch": ("3ch", "3CH"), "4ch": ("4ch", "HLA")},
        cine_descriptions=("Cine SSFP {view}", "TrueSSFP_cine_{view}", "CINE_{view}"),
        lge_descriptions=("LGE {view} PSIR", "DE_{view}"),
        cine_sequence_name="TrueSSFP",
        lge_sequence_name="FFE3D_IR",
        cine_scanning_sequence=("GR", "SS"),
        lge_scanning_sequence=("GR\\IR", "SS\\MP"),
        cine_image_type=("ORIGINAL", "PRIMARY", "OTHER"),
        lge_image_type=("ORIGINAL", "PRIMARY", "OTHER"),
        study_descriptions=("MRI CARDIAC", "HEART"),
        station_prefix="CMS",
    ),
}
