"""Enhanced MR Image Storage: one multi-frame file per series.

Frames run slice by slice, and within a slice phase by phase. Geometry and
timing that differ per frame are in the Per-frame Functional Groups
(PlanePositionSequence, CardiacSynchronizationSequence,
FrameContentSequence). What all frames share is in the Shared Functional
Groups (PixelMeasuresSequence, PlaneOrientationSequence, timing).
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from phantom.dicom_classic import SeriesIds, mr_series_module
from phantom.dicom_common import ENHANCED_MR_IMAGE_STORAGE, StudyIdentity, file_meta, format_ds, patient_study_modules, set_pixel_data
from phantom.series import RenderedSeries
from phantom.study import StudyPlan
from phantom.uids import derive_uid

# Attributes that the classic MR Image module carries at the top level but
# Enhanced MR moves into functional groups or drops.
_CLASSIC_ONLY = (
    "SliceThickness", "SpacingBetweenSlices", "RepetitionTime", "EchoTime", "FlipAngle", "InversionTime",
    "NumberOfAverages", "EchoNumbers", "ImagedNucleus", "PixelSpacing", "TriggerWindow", "SequenceName",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "WindowCenter", "WindowWidth", "AcquisitionMatrix",
    "InPlanePhaseEncodingDirection", "ImagingFrequency",
)


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _shared_groups(plan: StudyPlan, rendered: RenderedSeries, classic: Dataset) -> Dataset:
    acquisition = plan.acquisition
    lge = rendered.layout.kind == "lge"
    plane = rendered.layout.planes[0]
    measures = _item(PixelSpacing=classic.PixelSpacing, SliceThickness=classic.SliceThickness)
    if "SpacingBetweenSlices" in classic:
        measures.SpacingBetweenSlices = classic.SpacingBetweenSlices
    orientation = _item(ImageOrientationPatient=[format_ds(round(float(v), 6)) for v in (*plane.row_direction, *plane.column_direction)])
    timing = _item(RepetitionTime=float(classic.RepetitionTime), FlipAngle=float(classic.FlipAngle), EchoTrainLength=1)
    echo = _item(EffectiveEchoTime=float(classic.EchoTime))

    modifier = _item(InversionRecovery="YES" if lge else "NO", FlowCompensation="NONE", SpatialPresaturation="NONE")
    if lge:
        modifier.InversionTimes = [float(classic.InversionTime)]
    frame_type = _item(
        FrameType=["ORIGINAL", "PRIMARY", "M_IR" if lge else "M_FFE", "NONE"],
        PixelPresentation="MONOCHROME",
        VolumetricProperties="VOLUME",
        VolumeBasedCalculationTechnique="NONE",
        ComplexImageComponent="MAGNITUDE",
        AcquisitionContrast="T1" if lge else "MIXED",
    )

    transform = _item(RescaleIntercept="0", RescaleSlope="1", RescaleType="US")
    voi = _item(WindowCenter=classic.WindowCenter, WindowWidth=classic.WindowWidth)
    shared = _item(
        PixelMeasuresSequence=Sequence([measures]),
        PlaneOrientationSequence=Sequence([orientation]),
        MRTimingAndRelatedParametersSequence=Sequence([timing]),
        MREchoSequence=Sequence([echo]),
        MRModifierSequence=Sequence([modifier]),
        MRImageFrameTypeSequence=Sequence([frame_type]),
        PixelValueTransformationSequence=Sequence([transform]),
        FrameVOILUTSequence=Sequence([voi]),
    )
    shared.MRFOVGeometrySequence = Sequence(
        [_item(InPlanePhaseEncodingDirection="COLUMN", MRAcquisitionFrequencyEncodingSteps=acquisition.columns, MRAcquisitionPhaseEncodingStepsInPlane=acquisition.rows)]
    )
    return shared


def _per_frame_groups(plan: StudyPlan, rendered: RenderedSeries) -> Sequence:
    layout = rendered.layout
    rr = plan.acquisition.rr_interval_ms
    items = []
    for slice_index, plane in enumerate(layout.planes):
        for phase_index, fraction in enumerate(layout.phase_fractions):
            content = _item(
                StackID="1",
                InStackPositionNumber=slice_index + 1,
                TemporalPositionIndex=phase_index + 1,
                DimensionIndexValues=[slice_index + 1, phase_index + 1],
            )
            position = _item(ImagePositionPatient=[format_ds(round(float(v), 4)) for v in plane.position])
            cardiac = _item(
                NominalCardiacTriggerDelayTime=round(fraction * rr, 2),
                CardiacSynchronizationTechnique="RETROSPECTIVE" if layout.kind == "cine" else "PROSPECTIVE",
                RRIntervalTimeNominal=round(rr, 1),
            )
            items.append(
                _item(
                    FrameContentSequence=Sequence([content]),
                    PlanePositionSequence=Sequence([position]),
                    CardiacSynchronizationSequence=Sequence([cardiac]),
                )
            )
    return Sequence(items)


def write_enhanced_series(plan: StudyPlan, identity: StudyIdentity, rendered: RenderedSeries, ids: SeriesIds, compressed: bool) -> list[Path]:
    """Write the whole series as one Enhanced MR multi-frame file."""
    layout = rendered.layout
    ds = patient_study_modules(plan, identity)
    classic = mr_series_module(plan, rendered, ids)
    shared = _shared_groups(plan, rendered, classic)
    for keyword in _CLASSIC_ONLY:
        if keyword in classic:
            delattr(classic, keyword)
    ds.update(classic)

    sop_uid = derive_uid(plan.seed, plan.index, "series", ids.number, "instance", 1)
    ds.file_meta = file_meta(ENHANCED_MR_IMAGE_STORAGE, sop_uid, compressed)
    ds.SOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = 1
    ds.ContentDate = ds.SeriesDate
    ds.ContentTime = ds.SeriesTime
    ds.AcquisitionDateTime = ds.SeriesDate + ds.SeriesTime
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M_IR" if layout.kind == "lge" else "M_FFE", "NONE"]
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.MagneticFieldStrength = classic.MagneticFieldStrength
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = ""
    style = plan.acquisition.style
    template = style.lge_sequence_name if layout.kind == "lge" else style.cine_sequence_name
    # Philips leaves SequenceName empty; its enhanced files name the pulse sequence.
    ds.PulseSequenceName = template.format(phases=plan.acquisition.phases) or ("T1TFE" if layout.kind == "lge" else "B-TFE")

    ds.NumberOfFrames = len(layout.planes) * len(layout.phase_fractions)
    dimension_uid = derive_uid(plan.seed, plan.index, "series", ids.number, "dimensions")
    ds.DimensionOrganizationSequence = Sequence([_item(DimensionOrganizationUID=dimension_uid)])
    ds.DimensionIndexSequence = Sequence(
        [
            _item(DimensionOrganizationUID=dimension_uid, DimensionIndexPointer=0x00209057, FunctionalGroupPointer=0x00209111, DimensionDescriptionLabel="In-Stack Position"),
            _item(DimensionOrganizationUID=dimension_uid, DimensionIndexPointer=0x00209128, FunctionalGroupPointer=0x00209111, DimensionDescriptionLabel="Temporal Position Index"),
        ]
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = _per_frame_groups(plan, rendered)

    frames = [rendered.pixels[s, p] for s in range(len(layout.planes)) for p in range(len(layout.phase_fractions))]
    set_pixel_data(ds, frames, compressed)
    ids.folder.mkdir(parents=True, exist_ok=True)
    path = ids.folder / ids.file_pattern.format(1)
    ds.save_as(path, enforce_file_format=True)
    return [path]
