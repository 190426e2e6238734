"""Generated container names (`container run` without --name): adjective_surname, as docker's, from a
space about as large as docker's names-generator (~100 x ~240, ~24k names) so that parallel runs rarely
meet; a clash is retried under the runtime's name lock by `with_free_name`. Lists are our own."""

from __future__ import annotations

import os

ADJECTIVES = tuple("""
able adept agile airy amber ample apt ardent astute awake balmy bold brave breezy bright brisk bubbly calm
candid capable careful cheerful civil clever cosmic cozy crisp curious daring dazzling deft devoted diligent
dreamy eager earnest easy elated elegant epic exact fair faithful fearless festive fierce fond frank friendly
frosty gallant gentle giddy glad gleeful golden graceful grand happy hardy hearty helpful honest hopeful humble
jolly jovial keen kind lively loyal lucid lucky merry mighty modest nifty noble peaceful plucky polite proud
quick quiet quirky radiant rapid ready serene sharp shiny silly sincere smart snappy sober spirited steady
sunny swift tender tidy tranquil trusty upbeat valiant vibrant vigilant vivid warm wise witty zealous zen
""".split())

SURNAMES = tuple("""
abel agnesi alhazen almeida ampere anning archimedes aryabhata avogadro babbage backus bardeen bartik bell
bernoulli bhabha bohr boltzmann boole borg bose bragg brahe brattain burnell cannon cantor carnot carson cauchy
cavendish cerf chandrasekhar chebyshev clarke colden conway copernicus coulomb crick curie darwin davinci
dedekind descartes dijkstra dirac doppler driscoll dubinsky easley edison einstein elgamal elion ellis engelbart
erdos euclid euler faraday fermat fermi feynman fibonacci fourier franklin fresnel galileo galois gauss
germain gibbs goldberg goldwasser golick goodall gould hamilton hawking heisenberg hellman hertz hilbert
hodgkin hofstadter hollerith hopper hubble huffman huygens hypatia jackson jang jemison jennings jepsen joliot
joule kalam kapitsa kare kepler khorana kilby kirch knuth kowalevski lalande lamarr lamport laplace leakey
leavitt lederberg lehmann leibniz lewin liskov lovelace lumiere mahavira margulis matsumoto maxwell mayer
mccarthy mcclintock mclean mcnulty meitner mendel mendeleev merkle mestorf minsky mirzakhani montalcini moore
morse moser napier nash neumann newton nightingale nobel noether northcutt noyce ohm panini pare pascal pasteur
payne perlman pike planck poincare poitras ptolemy raman ramanujan rhodes ride riemann ritchie robinson
roentgen rosalind rubin saha sammet sanderson satoshi schrodinger shamir shannon shaw shirley shockley shtern
sinoussi snyder solomon spence stonebraker sutherland swanson swartz swirles taussig tesla tharp thompson
torvalds tu turing varahamihira vaughan villani visvesvaraya volhard volta wescoff wilbur wiles williams
williamson wilson wing wozniak wright wu yalow yonath zhukovsky zuse kovalevskaya haibt lichterman
banach bethe blackwell church dyson galvani hamming hoare kahan kolmogorov lagrange lorentz markov milner
pauli rivest scott sipser stallman tarjan valiant yao thomson wegener
""".split())


def random_name() -> str:
    a, b = int.from_bytes(os.urandom(4), "little").__divmod__(len(SURNAMES))  # not `random`: an import per run
    return f"{ADJECTIVES[a % len(ADJECTIVES)]}_{SURNAMES[b]}"


def with_free_name(spec, attempt, *, generated: bool, tries: int = 20):
    """attempt(spec) (a runtime create or run); when the name was generated here and another container
    took it first (the runtime checks under its name lock, so a clash is never silent), try another."""
    from dataclasses import replace

    from composer.errors import ConflictError

    for _ in range(tries - 1):
        try:
            return attempt(spec)
        except ConflictError as e:
            if not generated or f'"/{spec.name}"' not in str(e):
                raise
            spec = replace(spec, name=random_name())
    return attempt(spec)
