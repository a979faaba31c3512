/* test_manifest.c - manifest.h: validating OCI / Docker manifests and indexes and listing their references. */
#include "check.h"
#include "manifest.h"

#define R8(s) s s s s s s s s
#define DG(c) "sha256:" R8(R8(c)) /* a valid digest made of one repeated hex character */
#define DG_1 DG("1")
#define DG_2 DG("2")
#define DG_3 DG("3")
#define DG_4 DG("4")
#define DG_5 DG("5")
#define DG_A DG("a")
#define DG_B DG("b")
#define DG_C DG("c")
#define DG_D DG("d")
#define CFG_MT "application/vnd.oci.image.config.v1+json"
#define LAYER_MT "application/vnd.oci.image.layer.v1.tar+gzip"
#define FOREIGN_MT "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define NONDIST_MT "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define SHA512_A "sha512:" R8(R8("a")) /* well-formed hex, unsupported algorithm */

#define OCI_IMAGE                                                                                                      \
    "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","                                                      \
    "\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_C "\",\"size\":7023},"                                 \
    "\"layers\":["                                                                                                     \
    "{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" DG_1 "\",\"size\":32654},"                                         \
    "{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" DG_2 "\",\"size\":16724},"                                         \
    "{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" DG_3 "\",\"size\":0}]}"

static char detail[512];

static int parse(const char *body, const char *ct, struct manifest_info *mi)
{
    detail[0] = '\0';
    return manifest_parse(body, strlen(body), ct, ct != NULL ? strlen(ct) : 0, mi, detail, sizeof(detail));
}

/* Parses `body` expecting BERR_MANIFEST_INVALID; returns 1 if it was rejected with a non-empty detail. */
static int rejected(const char *body, const char *ct)
{
    struct manifest_info mi;
    int rc = parse(body, ct, &mi);
    if (rc == 0)
        manifest_info_free(&mi);
    return rc == BERR_MANIFEST_INVALID && detail[0] != '\0';
}

/* An OCI image manifest is IMAGE; refs are config then layers, in order, with their sizes. */
static void oci_image_lists_config_then_layers(void)
{
    struct manifest_info mi;
    REQUIRE_OK(parse(OCI_IMAGE, MT_OCI_MANIFEST, &mi));
    CHECK_INT_EQ(mi.kind, MANIFEST_IMAGE);
    CHECK_STR_EQ(mi.media_type, MT_OCI_MANIFEST);
    REQUIRE_INT_EQ(mi.nrefs, 4);
    CHECK_STR_EQ(mi.refs[0].digest, DG_C);
    CHECK_INT_EQ(mi.refs[0].size, 7023);
    CHECK_STR_EQ(mi.refs[1].digest, DG_1);
    CHECK_INT_EQ(mi.refs[1].size, 32654);
    CHECK_STR_EQ(mi.refs[2].digest, DG_2);
    CHECK_INT_EQ(mi.refs[2].size, 16724);
    CHECK_STR_EQ(mi.refs[3].digest, DG_3);
    CHECK_INT_EQ(mi.refs[3].size, 0);
    for (size_t i = 0; i < mi.nrefs; i++) {
        CHECK_INT_EQ(mi.refs[i].is_manifest, 0);
        CHECK_INT_EQ(mi.refs[i].foreign, 0);
    }
    CHECK_STR_EQ(mi.subject, "");
    CHECK_NULL(mi.annotations);
    manifest_info_free(&mi);
    CHECK_NULL(mi.refs);
    CHECK_INT_EQ(mi.nrefs, 0);
}

/* Without mediaType in the body or a Content-Type, a manifest with config is inferred to be an OCI manifest. */
static void oci_image_without_media_type_is_inferred(void)
{
    struct manifest_info mi;
    const char *body = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_C
                       "\",\"size\":2},\"layers\":[]}";
    REQUIRE_OK(parse(body, NULL, &mi));
    CHECK_INT_EQ(mi.kind, MANIFEST_IMAGE);
    CHECK_STR_EQ(mi.media_type, MT_OCI_MANIFEST);
    CHECK_INT_EQ(mi.nrefs, 1);
    manifest_info_free(&mi);
}

/* An OCI index is INDEX; entries whose mediaType is a manifest type are flagged is_manifest, others are not. */
static void oci_index_flags_manifest_entries(void)
{
    struct manifest_info mi;
    const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
                       "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DG_A "\",\"size\":100,"
                       "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
                       "{\"mediaType\":\"" MT_OCI_INDEX "\",\"digest\":\"" DG_B "\",\"size\":200},"
                       "{\"mediaType\":\"application/vnd.example.blob\",\"digest\":\"" DG_D "\",\"size\":300}]}";
    REQUIRE_OK(parse(body, MT_OCI_INDEX, &mi));
    CHECK_INT_EQ(mi.kind, MANIFEST_INDEX);
    CHECK_STR_EQ(mi.media_type, MT_OCI_INDEX);
    REQUIRE_INT_EQ(mi.nrefs, 3);
    CHECK_STR_EQ(mi.refs[0].digest, DG_A);
    CHECK_INT_EQ(mi.refs[0].size, 100);
    CHECK_INT_EQ(mi.refs[0].is_manifest, 1);
    CHECK_INT_EQ(mi.refs[1].is_manifest, 1);
    CHECK_INT_EQ(mi.refs[1].size, 200);
    CHECK_INT_EQ(mi.refs[2].is_manifest, 0);
    CHECK_NULL(mi.artifact_type); /* an index has no config to fall back on */
    manifest_info_free(&mi);
}

/* A Docker schema2 manifest is IMAGE with the Docker media type; a manifest list is INDEX. */
static void docker_schema2_and_list_are_recognized(void)
{
    struct manifest_info mi;
    const char *image =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" DG_C
        "\",\"size\":1469},"
        "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" DG_1
        "\",\"size\":2811}]}";
    const char *list = "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":["
                       "{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"digest\":\"" DG_A "\",\"size\":528}]}";
    REQUIRE_OK(parse(image, MT_DOCKER_MANIFEST, &mi));
    CHECK_INT_EQ(mi.kind, MANIFEST_IMAGE);
    CHECK_STR_EQ(mi.media_type, MT_DOCKER_MANIFEST);
    CHECK_INT_EQ(mi.nrefs, 2);
    CHECK_STR_EQ(mi.artifact_type, "application/vnd.docker.container.image.v1+json");
    manifest_info_free(&mi);
    REQUIRE_OK(parse(list, MT_DOCKER_LIST, &mi));
    CHECK_INT_EQ(mi.kind, MANIFEST_INDEX);
    CHECK_STR_EQ(mi.media_type, MT_DOCKER_LIST);
    REQUIRE_INT_EQ(mi.nrefs, 1);
    CHECK_INT_EQ(mi.refs[0].is_manifest, 1);
    manifest_info_free(&mi);
}

/* artifactType wins over config.mediaType; without it, an image manifest's artifact type is config.mediaType. */
static void artifact_type_from_field_else_config(void)
{
    struct manifest_info mi;
    const char *with =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.example.sbom\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" DG_4 "\",\"size\":2}}";
    const char *without =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.example.sig.config\",\"digest\":\"" DG_4 "\",\"size\":2}}";
    REQUIRE_OK(parse(with, NULL, &mi));
    CHECK_STR_EQ(mi.artifact_type, "application/vnd.example.sbom");
    manifest_info_free(&mi);
    REQUIRE_OK(parse(without, NULL, &mi));
    CHECK_STR_EQ(mi.artifact_type, "application/vnd.example.sig.config");
    manifest_info_free(&mi);
}

/* The subject descriptor's digest is extracted (and it is not a reference the registry must hold). */
static void subject_digest_is_extracted(void)
{
    struct manifest_info mi;
    const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
                       "\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4 "\",\"size\":2},"
                       "\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DG_5 "\",\"size\":9}}";
    REQUIRE_OK(parse(body, NULL, &mi));
    CHECK_STR_EQ(mi.subject, DG_5);
    CHECK_INT_EQ(mi.nrefs, 1);
    manifest_info_free(&mi);
}

/* Annotations are captured as compact JSON (keys sorted); an empty object is kept as NULL. */
static void annotations_captured_as_compact_json(void)
{
    struct manifest_info mi;
    const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
                       "\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4 "\",\"size\":2},"
                       "\"annotations\":{ \"org.b\" : \"2\",\n \"org.a\":\"1\" }}";
    const char *empty = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4
                        "\",\"size\":2},\"annotations\":{}}";
    REQUIRE_OK(parse(body, NULL, &mi));
    CHECK_STR_EQ(mi.annotations, "{\"org.a\":\"1\",\"org.b\":\"2\"}");
    manifest_info_free(&mi);
    CHECK_NULL(mi.annotations);
    REQUIRE_OK(parse(empty, NULL, &mi));
    CHECK_NULL(mi.annotations);
    manifest_info_free(&mi);
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4
                   "\",\"size\":2},\"annotations\":{\"a\":1}}",
                   NULL));
}

/* A body mediaType that disagrees with Content-Type is rejected, naming both. */
static void media_type_content_type_mismatch_rejected(void)
{
    CHECK(rejected(OCI_IMAGE, MT_DOCKER_MANIFEST));
    CHECK_STR_CONTAINS(detail, MT_OCI_MANIFEST);
    CHECK_STR_CONTAINS(detail, MT_DOCKER_MANIFEST);
    CHECK(rejected(OCI_IMAGE, MT_OCI_INDEX));
}

/* A Content-Type with parameters ("; charset=utf-8") is compared by its type only. */
static void content_type_with_charset_accepted(void)
{
    struct manifest_info mi;
    REQUIRE_OK(parse(OCI_IMAGE, MT_OCI_MANIFEST "; charset=utf-8", &mi));
    CHECK_STR_EQ(mi.media_type, MT_OCI_MANIFEST);
    manifest_info_free(&mi);
    REQUIRE_OK(parse(OCI_IMAGE, MT_OCI_MANIFEST ";charset=UTF-8", &mi));
    manifest_info_free(&mi);
    CHECK_STR_EQ(manifest_known_type(MT_OCI_INDEX " ; q=1", strlen(MT_OCI_INDEX " ; q=1")), MT_OCI_INDEX);
    CHECK_NULL(manifest_known_type("application/json", 16));
    CHECK_NULL(manifest_known_type(MT_DOCKER_SCHEMA1, strlen(MT_DOCKER_SCHEMA1)));
}

/* Docker schema1, by schemaVersion 1 or by either schema1 media type, is refused with a detail saying schema1. */
static void schema1_rejected_with_detail(void)
{
    CHECK(rejected("{\"schemaVersion\":1,\"name\":\"a\",\"tag\":\"b\",\"fsLayers\":[]}", NULL));
    CHECK_STR_CONTAINS(detail, "schema1");
    CHECK(rejected("{\"schemaVersion\":1,\"name\":\"a\"}", MT_DOCKER_SCHEMA1_SIGNED));
    CHECK_STR_CONTAINS(detail, "schema1");
    CHECK(rejected("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_SCHEMA1 "\",\"config\":{}}", NULL));
    CHECK_STR_CONTAINS(detail, "schema1");
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4 "\",\"size\":2}}",
                   MT_DOCKER_SCHEMA1_SIGNED));
    CHECK_STR_CONTAINS(detail, "schema1");
}

/* Bodies that are not a JSON object are rejected: garbage, truncated JSON, an array, empty input. */
static void not_json_rejected(void)
{
    CHECK(rejected("not json", NULL));
    CHECK(rejected("{\"schemaVersion\":2,", NULL));
    CHECK(rejected("[]", MT_OCI_MANIFEST));
    CHECK(rejected("", NULL));
    CHECK(rejected("{\"schemaVersion\":\"2\",\"config\":{}}", NULL));
}

/* A negative size and a non-integer size (fraction, string, missing) are rejected. */
static void bad_sizes_rejected(void)
{
    CHECK(rejected(
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4 "\",\"size\":-1}}", NULL));
    CHECK_STR_CONTAINS(detail, "size");
    CHECK(rejected(
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4 "\",\"size\":1.5}}", NULL));
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4
                   "\",\"size\":\"2\"}}",
                   NULL));
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4 "\"}}", NULL));
}

/* A layer with a malformed or non-sha256 digest is rejected, and the detail names the layer. */
static void bad_layer_digest_rejected(void)
{
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4
                   "\",\"size\":2},\"layers\":[{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"sha256:abc\","
                   "\"size\":1}]}",
                   NULL));
    CHECK_STR_CONTAINS(detail, "layers[0]");
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4
                   "\",\"size\":2},\"layers\":[{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" DG_1
                   "\",\"size\":1},{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" SHA512_A "\",\"size\":1}]}",
                   NULL));
    CHECK_STR_CONTAINS(detail, "layers[1]");
}

/* An image manifest without config is rejected (with a Content-Type, so the type is not inferred from shape). */
static void missing_config_rejected(void)
{
    CHECK(rejected("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"layers\":[]}", NULL));
    CHECK_STR_CONTAINS(detail, "config");
    CHECK(rejected("{\"schemaVersion\":2,\"layers\":[]}", MT_DOCKER_MANIFEST));
}

/* Duplicate JSON keys are rejected: two parsers must never read two different manifests from one body. */
static void duplicate_keys_rejected(void)
{
    CHECK(rejected("{\"schemaVersion\":2,\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT
                   "\",\"digest\":\"" DG_4 "\",\"size\":2}}",
                   NULL));
    CHECK(rejected("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_4
                   "\",\"digest\":\"" DG_5 "\",\"size\":2}}",
                   NULL));
}

/* A non-distributable layer with urls is flagged foreign; the same layer without urls is not. */
static void foreign_layer_with_urls_flagged(void)
{
    struct manifest_info mi;
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":\"" CFG_MT "\",\"digest\":\"" DG_C "\",\"size\":10},"
        "\"layers\":["
        "{\"mediaType\":\"" FOREIGN_MT "\",\"digest\":\"" DG_1 "\",\"size\":5,\"urls\":[\"https://x/1\"]},"
        "{\"mediaType\":\"" FOREIGN_MT "\",\"digest\":\"" DG_2 "\",\"size\":5},"
        "{\"mediaType\":\"" NONDIST_MT "\",\"digest\":\"" DG_3 "\",\"size\":5,\"urls\":[\"https://x/3\"]},"
        "{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" DG_5 "\",\"size\":5,\"urls\":[\"https://x/5\"]}]}";
    REQUIRE_OK(parse(body, NULL, &mi));
    REQUIRE_INT_EQ(mi.nrefs, 5);
    CHECK_INT_EQ(mi.refs[0].foreign, 0);
    CHECK_INT_EQ(mi.refs[1].foreign, 1);
    CHECK_INT_EQ(mi.refs[2].foreign, 0);
    CHECK_INT_EQ(mi.refs[3].foreign, 1);
    CHECK_INT_EQ(mi.refs[4].foreign, 0);
    manifest_info_free(&mi);
}

/* An image manifest may not carry "manifests", and an index may not carry config or layers. */
static void image_and_index_shapes_do_not_mix(void)
{
    CHECK(rejected("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"" CFG_MT
                   "\",\"digest\":\"" DG_4 "\",\"size\":2},\"manifests\":[]}",
                   NULL));
    CHECK(rejected("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[],\"layers\":[]}", NULL));
    CHECK(rejected("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\"}", NULL));
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(oci_image_lists_config_then_layers),
        CHECK_TEST(oci_image_without_media_type_is_inferred),
        CHECK_TEST(oci_index_flags_manifest_entries),
        CHECK_TEST(docker_schema2_and_list_are_recognized),
        CHECK_TEST(artifact_type_from_field_else_config),
        CHECK_TEST(subject_digest_is_extracted),
        CHECK_TEST(annotations_captured_as_compact_json),
        CHECK_TEST(media_type_content_type_mismatch_rejected),
        CHECK_TEST(content_type_with_charset_accepted),
        CHECK_TEST(schema1_rejected_with_detail),
        CHECK_TEST(not_json_rejected),
        CHECK_TEST(bad_sizes_rejected),
        CHECK_TEST(bad_layer_digest_rejected),
        CHECK_TEST(missing_config_rejected),
        CHECK_TEST(duplicate_keys_rejected),
        CHECK_TEST(foreign_layer_with_urls_flagged),
        CHECK_TEST(image_and_index_shapes_do_not_mix),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
