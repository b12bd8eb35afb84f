//! Training and registration as one reusable step (the later demos need a champion):
//! aprender fits a random forest and a one-feature baseline on the seeded fraud set,
//! both are scored on a stratified holdout, the forest is written in realizar's tabular
//! format and pacha stores it content-addressed and signed, with a model card naming
//! its metrics, the data's hash and the inputs' schema.

use std::path::{Path, PathBuf};

use aprender::Matrix;
use aprender::forest::RandomForest;
use aprender::logistic::LogisticRegression;
use aprender::metrics::{Average, log_loss, precision_recall_f1, roc_auc_score};
use aprender::preprocessing::{StandardScaler, TestSize, train_test_split};
use aprender::save::SaveModel;
use course3_kit::data::{FEATURES, FraudSet, generate};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

/// The registered model's name.
pub const MODEL_NAME: &str = "fraud-forest";
/// Rows and seed of the training set (one data set everywhere).
pub const ROWS: usize = 20_000;
pub const SEED: u64 = 42;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the demos keep their registry, key and data: `$COURSE3_DEMO_DIR`, else a
/// folder under the system's temp directory.
pub fn workdir() -> PathBuf {
    std::env::var_os("COURSE3_DEMO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("course3-sovereign"))
}

/// Holdout scores of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub roc_auc: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub log_loss: f64,
}

fn scores(y: &[i64], p_fraud: &[f64]) -> Result<Scores, Error> {
    let pred: Vec<i64> = p_fraud.iter().map(|&p| i64::from(p >= 0.5)).collect();
    let (precision, recall, f1) = precision_recall_f1(y, &pred, Average::Binary { pos_label: 1 })?;
    let proba: Vec<f64> = p_fraud.iter().flat_map(|&p| [1.0 - p, p]).collect();
    Ok(Scores {
        roc_auc: roc_auc_score(y, p_fraud)?,
        precision,
        recall,
        f1,
        log_loss: log_loss(y, &proba, Some(&[0, 1]))?,
    })
}

/// A trained forest, its file bytes and how it and the baseline scored.
#[derive(Debug)]
pub struct Trained {
    pub data: FraudSet,
    pub train: FraudSet,
    pub test: FraudSet,
    pub model: Scores,
    pub baseline: Scores,
    /// The forest in realizar's tabular format.
    pub artifact: Vec<u8>,
    /// The forest's P(fraud) on the holdout, computed by aprender in-process.
    pub test_scores: Vec<f64>,
}

/// Column 1 (P(fraud)) of a `rows x 2` probability matrix.
pub fn positive(proba: &[f64]) -> Vec<f64> {
    proba.chunks_exact(2).map(|r| r[1]).collect()
}

/// Generate, split, fit the forest and the amount-only baseline, score both.
pub fn train() -> Result<Trained, Error> {
    let data = generate(ROWS, SEED, 0.0);
    let (train_idx, test_idx) =
        train_test_split(data.rows, TestSize::Fraction(0.25), SEED, Some(&data.y))?;
    let (train, test) = (data.take(&train_idx), data.take(&test_idx));
    let x_train = Matrix::new(&train.x, train.rows, FraudSet::COLS)?;
    let x_test = Matrix::new(&test.x, test.rows, FraudSet::COLS)?;

    // The baseline the course beats: logistic regression on the amount alone.
    let amount_train = train.column(0);
    let amount_test = test.column(0);
    let a_train = Matrix::new(&amount_train, train.rows, 1)?;
    let scaler = StandardScaler::fit(&a_train)?;
    let a_train = scaler.transform(&a_train)?;
    let a_test = scaler.transform(&Matrix::new(&amount_test, test.rows, 1)?)?;
    let baseline =
        LogisticRegression::default().fit(&Matrix::new(&a_train, train.rows, 1)?, &train.y)?;
    let baseline_p = positive(&baseline.predict_proba(&Matrix::new(&a_test, test.rows, 1)?)?);

    let forest = RandomForest {
        n_estimators: 100,
        seed: SEED,
        n_jobs: 2,
        ..RandomForest::classifier()
    }
    .fit_classifier(&x_train, &train.y)?;
    let test_scores = positive(&forest.predict_values(&x_test)?);
    Ok(Trained {
        model: scores(&test.y, &test_scores)?,
        baseline: scores(&test.y, &baseline_p)?,
        artifact: forest.to_bytes()?,
        test_scores,
        data,
        train,
        test,
    })
}

/// The model card pacha signs with the version.
pub fn card(t: &Trained, run_id: &str) -> Value {
    let m = &t.model;
    json!({
        "description": "Random forest (100 trees, gini, sqrt features) on the seeded fraud-like set; \
                        holdout 25 % stratified",
        "run_id": run_id,
        "data_hash": t.data.content_hash(),
        "metrics": {
            "roc_auc": m.roc_auc, "precision": m.precision, "recall": m.recall,
            "f1": m.f1, "log_loss": m.log_loss,
            "baseline_roc_auc": t.baseline.roc_auc,
            "train_rows": t.train.rows, "test_rows": t.test.rows,
        },
        "schema": {
            "inputs": FEATURES.iter().map(|f| json!({"name": f, "type": "double"})).collect::<Vec<_>>(),
            "outputs": [{"name": "is_fraud", "type": "long"}],
        },
    })
}

/// The registry under `dir` (created and trusting `dir/signer.key` on first use).
pub fn open_registry(dir: &Path) -> Result<(pacha::Registry, SigningKey), Error> {
    std::fs::create_dir_all(dir)?;
    let key_path = dir.join("signer.key");
    let key = if key_path.exists() {
        pacha::keys::read_secret(&key_path)?
    } else {
        let k = pacha::keys::generate()?;
        pacha::keys::write_keypair(&k, &key_path)?;
        k
    };
    let registry = pacha::Registry::init(&dir.join("registry"))?;
    registry.trust(&key.verifying_key())?;
    Ok((registry, key))
}

/// What [`train_and_register`] did.
#[derive(Debug)]
pub struct Registered {
    pub trained: Trained,
    pub version: u64,
    /// The version `champion` pointed at before (if any).
    pub previous_champion: Option<u64>,
    pub card: Value,
}

/// Train, register as `challenger`, and promote to `champion` (the registry's
/// verifying load runs inside `promote`).
pub fn train_and_register(dir: &Path) -> Result<Registered, Error> {
    let trained = train()?;
    let (registry, key) = open_registry(dir)?;
    let run_id = format!(
        "model-training-seed{SEED}-{}",
        &trained.data.content_hash()[7..19]
    );
    let card = card(&trained, &run_id);
    let version =
        registry.register(MODEL_NAME, &trained.artifact, "model.realizar", &card, &key)?;
    registry.promote(MODEL_NAME, version, "challenger")?;
    let previous_champion = registry.promote(MODEL_NAME, version, "champion")?;
    Ok(Registered {
        trained,
        version,
        previous_champion,
        card,
    })
}

/// `pacha://ROOT/fraud-forest@champion` for the registry under `dir`.
pub fn champion_uri(dir: &Path) -> String {
    format!(
        "pacha://{}/{MODEL_NAME}@champion",
        dir.join("registry").display()
    )
}

/// The champion's URI, training and registering one first if there is none yet.
pub fn ensure_champion(dir: &Path) -> Result<String, Error> {
    let reg = dir.join("registry");
    let has = reg.exists()
        && pacha::Registry::open(&reg)
            .and_then(|r| r.load(&format!("{MODEL_NAME}@champion")))
            .is_ok();
    if !has {
        train_and_register(dir)?;
    }
    Ok(champion_uri(dir))
}
