"""The FHIR R4 resource types this server accepts: the R4 types that the R4B models can validate."""

from functools import cache
from importlib.util import find_spec

R4_RESOURCE_TYPES = (
    "Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse AuditEvent "
    "Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement CarePlan CareTeam "
    "CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression CodeSystem "
    "Communication CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent Contract "
    "Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue Device DeviceDefinition "
    "DeviceMetric DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference "
    "EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare "
    "EventDefinition Evidence EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag "
    "Goal GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization "
    "ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice Library "
    "Linkage List Location Measure MeasureReport Media Medication MedicationAdministration MedicationDispense "
    "MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct MedicinalProductAuthorization "
    "MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient "
    "MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged "
    "MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition MessageHeader "
    "MolecularSequence NamingSystem NutritionOrder Observation ObservationDefinition OperationDefinition "
    "OperationOutcome Organization OrganizationAffiliation Parameters Patient PaymentNotice "
    "PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole Procedure Provenance "
    "Questionnaire QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition "
    "ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment RiskEvidenceSynthesis Schedule "
    "SearchParameter ServiceRequest Slot Specimen SpecimenDefinition StructureDefinition StructureMap "
    "Subscription Substance SubstanceNucleicAcid SubstancePolymer SubstanceProtein "
    "SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification SupplyDelivery "
    "SupplyRequest Task TerminologyCapabilities TestReport TestScript ValueSet VerificationResult "
    "VisionPrescription"
).split()


def _has_model(resource_type: str) -> bool:
    """Whether fhir.resources ships an R4B model module for the type, found without importing it."""
    return find_spec(f"fhir.resources.R4B.{resource_type.lower()}") is not None


@cache
def supported_types() -> frozenset[str]:
    return frozenset(t for t in R4_RESOURCE_TYPES if _has_model(t))


def is_supported(resource_type: str) -> bool:
    return resource_type in supported_types()
